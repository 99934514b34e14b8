package redisstore

import (
	"hash/fnv"
	"strconv"
	"strings"
)

// Keys and slots.
//
// Redis Cluster changes keys atomically (a script, a transaction) only
// when they hash to one slot, which a hash tag ("{...}") decides. The keys
// are grouped so that every atomic step touches one slot:
//
//	o:{<client>/<number>}       OTP record (JSON), expires at KeepUntil
//	m:{<shard>}:<request id>    message (JSON), expires MessageTTL after SaveSend
//	x:{<carrier>/<id form>}     exact id index entry -> request id and part
//	y:{<carrier>/<id form>}     alternate id form (hex/decimal) index entry
//	p:{<carrier>/<id form>}     receipt that came before its message
//	pq:{<carrier>}              the carrier's pending receipts, oldest first (cap)
//	cbr/cbd/cbo/cbc:{<shard>}   callback records, due times, lease owners, clients
//	cbq:{<shard>}:<client>      one client's callbacks by due time
//	rl:{<key>}                  client rate bucket
//
// A message and the callbacks its receipts queue share a shard tag, so a
// delivery-state change and its callback are one atomic write. There are
// numShards shard tags, chosen so that their slots are spread evenly over
// the slot space (a cluster splits slots into contiguous ranges, so each
// master gets its share of messages). The three keys of one carrier id
// form share a slot, so that a receipt that finds no index entry and
// stores itself as pending, and a SaveSend that writes the entry and looks
// for a pending receipt, exclude each other. What spans slots (a message
// and its index entries) is written in an order that keeps it correct
// between the steps; see receipts.go.

// numShards is how many shard tags messages and callbacks are spread over.
// Changing it orphans what is stored under the old tags.
const numShards = 64

// clusterSlots is the number of Redis Cluster hash slots.
const clusterSlots = 16384

// shardTags[i] is the hash tag content of shard i: a short string whose
// slot lies in the i-th of numShards equal ranges of slots.
var shardTags = func() [numShards]string {
	var tags [numShards]string
	filled := 0
	for n := 0; filled < numShards; n++ {
		s := "s" + strconv.Itoa(n)
		i := int(keySlot(s)) * numShards / clusterSlots
		if tags[i] == "" {
			tags[i] = s
			filled++
		}
	}
	return tags
}()

// shardOf is the shard of a request id.
func shardOf(s string) int {
	h := fnv.New32a()
	h.Write([]byte(s))
	return int(h.Sum32() % numShards)
}

// callbackShard is the shard of a callback: the one its id names after
// its last '.' (receipt callbacks carry their message's shard so that the
// message's write can queue them), else the hash of the id (MO callbacks,
// whose ids the domain chooses).
func callbackShard(id string) int {
	if i := strings.LastIndexByte(id, '.'); i >= 0 {
		if n, err := strconv.Atoi(id[i+1:]); err == nil && n >= 0 && n < numShards {
			return n
		}
	}
	return shardOf(id)
}

// tag returns s as hash tag content: '{' and '}' would end or confuse the
// tag, so they (and the escape character) are percent-encoded.
func tag(s string) string {
	if !strings.ContainsAny(s, "{}%") {
		return s
	}
	r := strings.NewReplacer("%", "%25", "{", "%7B", "}", "%7D")
	return r.Replace(s)
}

func (db *DB) recordKey(key string) string { return db.prefix + "o:{" + tag(key) + "}" }

func (db *DB) messageKey(requestID string) string {
	return db.prefix + "m:{" + shardTags[shardOf(requestID)] + "}:" + requestID
}

// idKey is the key of kind ('x' exact, 'y' alternate, 'p' pending) of a
// carrier's message id form.
func (db *DB) idKey(kind byte, carrier, form string) string {
	return db.prefix + string(kind) + ":{" + tag(carrier+"/"+form) + "}"
}

func (db *DB) pendingQueueKey(carrier string) string { return db.prefix + "pq:{" + tag(carrier) + "}" }

func (db *DB) limiterKey(key string) string { return db.prefix + "rl:{" + tag(key) + "}" }

// cbKeys are the callback queue's keys of one shard.
type cbKeys struct {
	records string // HASH id -> callback JSON
	due     string // HASH id -> due time, unix ns in 19 digits
	owner   string // HASH id -> lease owner token, while claimed
	clients string // SET of client ids with queued callbacks
	queue   string // prefix of the per-client ZSETs: id -> due (µs) or lease end
}

func (db *DB) cbKeys(shard int) cbKeys {
	t := "{" + shardTags[shard] + "}"
	return cbKeys{
		records: db.prefix + "cbr:" + t,
		due:     db.prefix + "cbd:" + t,
		owner:   db.prefix + "cbo:" + t,
		clients: db.prefix + "cbc:" + t,
		queue:   db.prefix + "cbq:" + t + ":",
	}
}

// keySlot is the Redis Cluster slot of key: CRC16 (XMODEM) of its hash
// tag, or of the whole key when it has none, modulo 16384.
func keySlot(key string) uint16 {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	var crc uint16
	for k := 0; k < len(key); k++ {
		crc ^= uint16(key[k]) << 8
		for b := 0; b < 8; b++ {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc % clusterSlots
}
