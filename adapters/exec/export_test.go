package exec

import "time"

// SetAckQueueWait shortens the wait for a program that does not read its
// stdin, for tests; it returns a function restoring the old value.
func SetAckQueueWait(d time.Duration) (restore func()) {
	old := ackQueueWait
	ackQueueWait = d
	return func() { ackQueueWait = old }
}
