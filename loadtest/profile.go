package loadtest

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
)

// startProfiles starts this process's CPU profile into the file cpuPath
// and creates the file memPath for a heap profile ("" for neither): both
// before the run, so that a bad path fails at once. stop ends the CPU
// profile and writes the heap profile (after a GC, as go test
// -memprofile does).
func startProfiles(cpuPath, memPath string) (stop func() error, err error) {
	var cpuFile, memFile *os.File
	closeAll := func() {
		for _, f := range []*os.File{cpuFile, memFile} {
			if f != nil {
				f.Close()
			}
		}
	}
	if memPath != "" {
		if memFile, err = os.Create(memPath); err != nil {
			return nil, err
		}
	}
	if cpuPath != "" {
		if cpuFile, err = os.Create(cpuPath); err != nil {
			closeAll()
			return nil, err
		}
		if err = pprof.StartCPUProfile(cpuFile); err != nil {
			closeAll()
			return nil, fmt.Errorf("cpu profile: %w", err)
		}
	}
	return func() error {
		var errs []error
		if cpuFile != nil {
			pprof.StopCPUProfile()
			if err := cpuFile.Close(); err != nil {
				errs = append(errs, fmt.Errorf("cpu profile: %w", err))
			}
		}
		if memFile != nil {
			runtime.GC()
			if err := pprof.Lookup("heap").WriteTo(memFile, 0); err != nil {
				errs = append(errs, fmt.Errorf("heap profile: %w", err))
			}
			if err := memFile.Close(); err != nil {
				errs = append(errs, fmt.Errorf("heap profile: %w", err))
			}
		}
		return errors.Join(errs...)
	}, nil
}
