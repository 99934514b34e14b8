package otp

// Callback returns the callback_url and callback_secret of clientID. ok is
// false when the client is unknown or has no callback_url.
func (s *Settings) Callback(clientID string) (url, secret string, ok bool) {
	if s == nil {
		return "", "", false
	}
	c, found := s.clients[clientID]
	if !found || c.CallbackURL == "" {
		return "", "", false
	}
	return c.CallbackURL, c.CallbackSecret, true
}
