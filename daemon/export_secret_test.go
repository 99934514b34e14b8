package daemon

// LoadSecret is loadSecret, for the tests of the secret file.
var LoadSecret = loadSecret
