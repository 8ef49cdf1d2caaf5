package workflow

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"sync/atomic"
	"time"
)

// idCounter orders the ids this process makes within one second. It starts
// at a random value, as a MongoDB driver's counter does.
var idCounter atomic.Uint32

func init() {
	var b [4]byte
	_, _ = rand.Read(b[:])
	idCounter.Store(binary.BigEndian.Uint32(b[:]))
}

// NewID returns a 24-character hex id, the shape of the original service's
// MongoDB ObjectIds, so clients that check id shapes keep working. Like an
// ObjectId it starts with the time: 4 bytes of Unix seconds, then 3 bytes
// of a per-process counter, then 5 random bytes. So the ids one process
// makes increase, and the rows keyed by them (an execution and everything
// it records) are appended to the ends of the database's indexes instead of
// scattered over them: a batch of writes touches a few pages, not one per
// execution per index. The random tail keeps ids unpredictable. It is safe
// for concurrent use.
func NewID() string {
	var b [12]byte
	binary.BigEndian.PutUint32(b[0:4], uint32(time.Now().Unix()))
	n := idCounter.Add(1)
	b[4], b[5], b[6] = byte(n>>16), byte(n>>8), byte(n)
	_, _ = rand.Read(b[7:]) // crypto/rand.Read never returns an error since Go 1.24
	return hex.EncodeToString(b[:])
}
