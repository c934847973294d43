package storage

// Location names an object the way any client of the backend does, outside
// comfyq: the S3 bucket and the object's full key in it (the store's prefix
// included), or for the file store no bucket and the path under its root.
type Location struct {
	Bucket string
	Key    string
}

// Locator is implemented by stores whose objects are kept under another name
// than the key given to them (an S3 store with a prefix). Stores that keep a key
// as it is, such as the file store, need not implement it.
type Locator interface {
	// Locate returns where the object of key is kept. It does not check that
	// the object exists.
	Locate(key string) Location
	// Unlocate is the reverse: the key to give the store for an object at loc.
	// It returns false if loc is not in the store (another bucket, or a key
	// outside the prefix).
	Unlocate(loc Location) (key string, ok bool)
}

// Locate returns where the object of key is kept in s: what an output's key and
// bucket in the Job JSON say, so that a user's own S3 client opens the object.
func Locate(s Store, key string) Location {
	if l, ok := s.(Locator); ok {
		return l.Locate(key)
	}
	return Location{Key: key}
}

// Unlocate returns the key to give s for an object at loc. A location without
// a bucket is taken as a key for s itself: records written before outputs
// carried their bucket hold keys relative to the store.
func Unlocate(s Store, loc Location) (string, bool) {
	l, ok := s.(Locator)
	if !ok || loc.Bucket == "" {
		return loc.Key, true
	}
	return l.Unlocate(loc)
}

// InputKey returns the key to give s for a key a user submits as an input: the
// object's key in the bucket, as outputs report it, so that an output can be fed
// to another job; or, failing that, a key relative to the store as it was before
// outputs reported full keys.
func InputKey(s Store, key string) string {
	l, ok := s.(Locator)
	if !ok {
		return key
	}
	if k, ok := l.Unlocate(Location{Bucket: l.Locate("").Bucket, Key: key}); ok {
		return k
	}
	return key
}
