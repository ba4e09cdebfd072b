// Package storeurl opens the Store a repository URL names, ready for use:
// wrapped in storage/retry.
//
// Accepted forms:
//
//	file:///abs/path        a directory (storage/local)
//	/abs/path               the same, for convenience
//	s3://bucket             a bucket root (storage/s3)
//	s3://bucket/prefix      keys below prefix/
//
// Relative paths, file://host/..., query strings, fragments and credentials
// inside the URL are refused: credentials come from S3Config or the AWS
// default chain, never from the URL. Error messages never contain
// credentials.
package storeurl
