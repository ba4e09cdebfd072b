// Package miniotest runs a real MinIO server for tests.
//
// In a test:
//
//	srv := miniotest.Start(t)            // skips if no minio binary (fails if $CI is set)
//	srv.CreateBucket(t, "repo")
//	// talk to srv.Endpoint with srv.AccessKey / srv.SecretKey, path-style
//
// From TestMain, to share one server across a package's tests:
//
//	srv, err := miniotest.StartServer(dir)
//	...
//	defer srv.Stop()
//
// The binary is found in $WALVAULT_MINIO_BIN, else as "minio" on $PATH, else
// at $HOME/.cache/walvault/bin/minio. Each server listens on 127.0.0.1 on a
// free port, uses fresh random root credentials, keeps its data, certificates
// and log below the given directory, and runs in its own process group, which
// Stop (or the test's cleanup) kills. When a test using Start fails, the tail
// of the server log is printed.
package miniotest
