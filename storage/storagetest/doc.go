// Package storagetest is the conformance suite for storage.Store
// implementations.
//
// Every backend's tests call Run with a constructor for an empty store:
//
//	func TestConformance(t *testing.T) {
//		storagetest.Run(t, func(t *testing.T) storage.Store {
//			s, err := local.New(t.TempDir())
//			if err != nil {
//				t.Fatal(err)
//			}
//			return s
//		})
//	}
//
// Run checks each guarantee stated on storage.Store: atomic and durable Put,
// IfAbsent (also under concurrency), ranges, the not-found sentinel and that
// nothing else is reported as not found, lexical listing by any prefix, that
// a cancelled Put leaves nothing visible, and that invalid keys are refused.
// One behaviour may differ between backends: a key that is also the
// directory of other keys ("x/y" next to "x/y/z"). Object stores hold both; a
// file-system store may refuse the second Put, but only with an error that is
// not exist, not-found or transient, and without harming the first object.
//
// newStore is called once per subtest and must return an empty store that
// no other subtest uses; the suite does not clean up after itself.
package storagetest
