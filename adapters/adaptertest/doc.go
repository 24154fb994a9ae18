// Package adaptertest is the conformance suite every Sluice source and sink
// should pass, built-in or custom. Call RunSource or RunSink from a test of
// the adapter's package with a case that knows how to set up a real peer (a
// directory, an SFTP server, a database, a child program):
//
//	func TestConformance(t *testing.T) {
//		adaptertest.RunSource(t, adaptertest.SourceCase{
//			Setup: func(t *testing.T) *adaptertest.SourcePeer {
//				dir := t.TempDir()
//				return &adaptertest.SourcePeer{
//					New: func(t *testing.T, state adapters.State) adapters.Source {
//						return adaptertest.NewSource(t, "spool", map[string]any{"dir": dir}, state)
//					},
//					Produce: func(t *testing.T, n int) { writeFiles(t, dir, n) },
//				}
//			},
//		})
//	}
//
// The suite checks the contracts of the adapters package: connect, read or
// write, acknowledgement (an acked message is not emitted again by a source
// re-created with the same State), negative acknowledgement (a nacked batch
// is emitted again: at least once), message IDs stable across re-reads,
// Close twice, Close unblocking a blocked Read, cancelled contexts returning
// promptly, and reconnection after the peer restarts (when the case can
// restart it). It drives the adapter the way the engine does: one goroutine
// for Connect, Read and Ack, batches acked in read order, Connect called again
// after ErrNotConnected.
package adaptertest
