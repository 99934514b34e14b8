package smsc

// SetPassword makes the following binds need pw instead of
// Options.Password ("" accepts any): the carrier rotated the account's
// password. Sessions already bound stay bound, as at real SMSCs.
func (s *Server) SetPassword(pw string) { s.password.Store(&pw) }

// wantPassword is the password binds must present.
func (s *Server) wantPassword() string {
	if pw := s.password.Load(); pw != nil {
		return *pw
	}
	return s.cfg.Password
}
