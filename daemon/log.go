package daemon

import (
	"io"
	"log/slog"
	"strings"
)

// ParseLevel maps a config level name to a slog level (info if unknown).
func ParseLevel(s string) slog.Level {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}

// NewLogHandler returns the process's log handler: JSON (the default) or
// text, at the level of lv, which a reload may change.
func NewLogHandler(w io.Writer, format string, lv *slog.LevelVar) slog.Handler {
	opts := &slog.HandlerOptions{Level: lv}
	if format == "text" {
		return slog.NewTextHandler(w, opts)
	}
	return slog.NewJSONHandler(w, opts)
}
