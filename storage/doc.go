// Package storage is where comfyq keeps the files a job produces.
//
// It declares the [Store] interface that the worker and the API server use, the
// rules every object key obeys, and a small registry that turns a storage URL into
// a Store. The backends live beside it, each in a package of its own, in the way
// litestream keeps its replica clients:
//
//   - [github.com/comfyq/comfyq/storage/s3]: any S3-compatible service (AWS S3,
//     MinIO, versitygw, R2, …), through aws-sdk-go-v2.
//   - [github.com/comfyq/comfyq/storage/file]: a directory on a local or mounted
//     file system.
//
// # Opening a store
//
// A backend registers its URL scheme when its package is imported, so a program
// imports the backends it wants for their side effect and then calls [Open]:
//
//	import (
//		"github.com/comfyq/comfyq/storage"
//		_ "github.com/comfyq/comfyq/storage/file"
//		_ "github.com/comfyq/comfyq/storage/s3"
//	)
//
//	store, err := storage.Open(ctx, "s3://outputs/comfyq?endpoint=http://127.0.0.1:9000&path_style=true")
//
// The URL forms are:
//
//	s3://bucket[/prefix][?endpoint=URL&region=R&path_style=true&create_bucket=true&part_size=BYTES]
//	file:///absolute/dir[?base_url=http://host/files/]
//
// S3 credentials come from the usual AWS chain (AWS_ACCESS_KEY_ID and
// AWS_SECRET_ACCESS_KEY, AWS_PROFILE and the shared config files, …); they never
// appear in a storage URL, and [Store.String] never prints a secret.
//
// # Keys
//
// An object key is a "/"-separated path of one or more segments. Every key passed
// to a Store is checked by [ValidateKey]: no empty segment, no "." or ".." segment,
// no leading or trailing "/", no backslash, no control character, valid UTF-8, at
// most [MaxKeyLen] bytes and [MaxSegmentLen] bytes per segment. A key that breaks a
// rule is refused with an error wrapping [ErrInvalidKey] before any backend sees
// it, so no key can leave the store's bucket prefix or directory.
//
// File names that come from outside (a ComfyUI output name, an upload) go through
// [SanitizeName] first, and keys are built with [JoinKey]:
//
//	key, err := storage.JoinKey("jobs", jobID, nodeID, storage.SanitizeName(filename))
//
// # Streaming
//
// [Store.Put] reads its input once, as a stream, and never holds the whole object
// in memory: the S3 backend sends large objects as a multipart upload with a
// bounded number of parts in flight, the file backend writes to a temporary file
// that it renames into place. Both compute the object's size and SHA-256 while the
// bytes go by and return them in the [Object].
//
// # Errors
//
// A missing object is reported as an error wrapping [ErrNotFound]; a key that
// breaks the rules wraps [ErrInvalidKey]; a store that cannot hand out URLs wraps
// [ErrNoURL]. Test for them with [errors.Is].
//
// # Conformance
//
// Package [github.com/comfyq/comfyq/storage/storagetest] holds the conformance
// suite that every backend's tests run; a new backend passes it before it is used.
package storage
