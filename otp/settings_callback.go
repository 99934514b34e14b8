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

// CallbackFor returns where callbacks of kind go for clientID: the
// callback_url for receipts, the mo_callback_url for MO messages, both
// signed with the callback_secret. ok is false when the client is unknown
// or has no URL for that kind.
func (s *Settings) CallbackFor(clientID string, kind CallbackKind) (url, secret string, ok bool) {
	if kind != CallbackMO {
		return s.Callback(clientID)
	}
	if s == nil {
		return "", "", false
	}
	c, found := s.clients[clientID]
	if !found || c.MOCallbackURL == "" {
		return "", "", false
	}
	return c.MOCallbackURL, c.CallbackSecret, true
}
