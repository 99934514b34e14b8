// Package redisstore keeps otpgate's state in Redis Cluster (or one
// standalone Redis), so that several gateway nodes share it: OTP records
// with their per-number limits, messages with their carrier message-id
// index and the receipts that came before them, the callback queue (claimed
// with leases, so a node that dies mid-delivery loses nothing) and the
// client rate buckets. DB implements the same otp ports as the badger store
// (otp.Store, otp.ReceiptStore, otp.CallbackQueue, otp.MOQueue) and
// otp.Limiter.
//
// Every read-modify-write is a compare-and-set over keys of one slot,
// retried when another writer came first (the ports let their fn run more
// than once); keys.go says which keys share a slot and receipts.go why the
// steps that span slots are safe. Each write the gateway answers on is
// followed, on the same connection, by WAITAOF 1 1 (Redis and Valkey 7.2
// and later: on disk on the master and on a replica) or WAIT 1 (older: in
// a replica's memory); when no replica confirms in time the write fails
// with ErrShortfall, or with Options.OnShortfall ShortfallDegrade is
// logged and accepted. Records, messages, index entries, pending receipts
// and buckets expire by Redis TTLs.
package redisstore
