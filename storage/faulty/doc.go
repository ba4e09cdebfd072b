// Package faulty wraps a storage.Store to inject failures, for tests of the
// code above it: retries, error paths, and what a caller does when an
// answer is lost or a body breaks off. It is kopia's blobtesting faulty
// store for walvault: one configurable wrapper instead of a fake per test.
//
// A Fault says which calls it applies to (operations, a key predicate,
// which of the matching calls) and what happens to them:
//
//	st := faulty.Wrap(memstore.New())
//	// The next two Puts under wal/ fail with a transient error.
//	st.Inject(faulty.Fault{Ops: faulty.Put, Key: faulty.Prefix("wal/"), Times: 2,
//		Err: storage.Transient(errReset)})
//	// Every Get body breaks off after 100 bytes.
//	st.Inject(faulty.Fault{Ops: faulty.Get, Mode: faulty.Cut, Cut: 100, Err: errReset})
//	// The manifest is stored, but the caller is told it failed.
//	st.Inject(faulty.Fault{Ops: faulty.Put, Key: faulty.Prefix("backups/"), Times: 1,
//		Mode: faulty.LoseAnswer, Err: storage.Transient(errReset)})
//
// A Fault without Err is a hook: its Delay slows calls down, its Before
// runs (to hold a call, or take something away at the right moment) and
// its After sees every outcome; the call itself goes through.
//
// The Store also counts calls per operation (Calls) and the most calls of
// an operation in flight at once (Peak), for tests that bound parallelism.
//
// Without faults the wrapper changes nothing: it passes the conformance
// suite in storage/storagetest. It is safe for concurrent use; faults may
// be injected and removed while calls run.
package faulty
