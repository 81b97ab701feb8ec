// Command bbolt-check reads a bbolt file with the real go.etcd.io/bbolt
// library, as an independent check of export-center's own bbolt writer
// (src/formats/bbolt.rs). tests/bbolt.rs builds and runs it.
//
//	bbolt-check FILE
//
// It opens FILE read-only, prints every tx.Check() error, then walks every
// bucket depth-first in cursor order, checking that keys are strictly
// ascending and that Get/Bucket find each key through the b+tree search
// (tx.Check in bbolt 1.3 checks neither), and prints:
//
//	hwm N                 high-water mark (pages in the file)
//	buckets N             nested buckets at every depth (the root not counted)
//	keys N                key/value pairs (bucket entries not counted)
//	stats ...             bbolt's BucketStats summed over the top-level buckets
//	digest HEX            SHA-256 of the records below
//	rw-check ok           a copy opened read-write took a write transaction
//	                      and still passes tx.Check
//	ok | FAILED
//
// Each record of the digest, in walk order: a tag byte ('B' nested bucket,
// 'V' key/value), u64le number of path components, then u64le length +
// bytes of each bucket name on the path from the root, of the key, and
// (for 'V') of the value. Errors are printed as "check-error", "walk-error"
// or "rw-error" lines; the exit status is 1 if there was any, 2 if the file
// could not be opened.
package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

type walker struct {
	digest  hash.Hash
	buckets int
	keys    int
	errors  int
}

func (w *walker) fail(kind, format string, args ...interface{}) {
	w.errors++
	fmt.Printf("%s %s\n", kind, fmt.Sprintf(format, args...))
}

func (w *walker) field(b []byte) {
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(len(b)))
	w.digest.Write(n[:])
	w.digest.Write(b)
}

func (w *walker) record(tag byte, path [][]byte, key, value []byte) {
	w.digest.Write([]byte{tag})
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(len(path)))
	w.digest.Write(n[:])
	for _, p := range path {
		w.field(p)
	}
	w.field(key)
	if tag == 'V' {
		w.field(value)
	}
}

func show(path [][]byte) string {
	return string(bytes.Join(path, []byte("/")))
}

// walk visits the entries of one bucket; b is nil for the root, whose
// entries must all be buckets.
func (w *walker) walk(tx *bolt.Tx, b *bolt.Bucket, path [][]byte) {
	var c *bolt.Cursor
	if b == nil {
		c = tx.Cursor()
	} else {
		c = b.Cursor()
	}
	var prev []byte
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if prev != nil && bytes.Compare(prev, k) >= 0 {
			w.fail("walk-error", "bucket %q: key %q not after %q", show(path), k, prev)
		}
		prev = append(prev[:0], k...)
		if v == nil {
			var child *bolt.Bucket
			if b == nil {
				child = tx.Bucket(k)
			} else {
				child = b.Bucket(k)
			}
			if child == nil {
				w.fail("walk-error", "bucket %q: nested bucket %q not found by search", show(path), k)
				continue
			}
			w.buckets++
			w.record('B', path, k, nil)
			sub := append(append([][]byte{}, path...), append([]byte{}, k...))
			w.walk(tx, child, sub)
			continue
		}
		if b == nil {
			w.fail("walk-error", "root bucket holds a plain key %q", k)
			continue
		}
		if got := b.Get(k); !bytes.Equal(got, v) {
			w.fail("walk-error", "bucket %q: Get(%q) does not return the cursor's value (%d vs %d bytes)", show(path), k, len(got), len(v))
		}
		w.keys++
		w.record('V', path, k, v)
	}
}

func check(tx *bolt.Tx, kind string) int {
	n := 0
	for err := range tx.Check() {
		fmt.Printf("%s %v\n", kind, err)
		n++
	}
	return n
}

// rwCheck copies the file, takes one write transaction on the copy
// (a new bucket, and one key deleted from the first top-level bucket that
// holds plain keys) and runs tx.Check on the result.
func rwCheck(file string) error {
	dir, err := os.MkdirTemp("", "bbolt-check-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	copyPath := filepath.Join(dir, "copy.db")
	in, err := os.Open(file)
	if err != nil {
		return err
	}
	out, err := os.Create(copyPath)
	if err != nil {
		in.Close()
		return err
	}
	_, err = io.Copy(out, in)
	in.Close()
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	db, err := bolt.Open(copyPath, 0600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return err
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte("zz-bbolt-check"))
		if err != nil {
			return err
		}
		if err := b.Put([]byte("k"), []byte("v")); err != nil {
			return err
		}
		c := tx.Cursor()
		for name, _ := c.First(); name != nil; name, _ = c.Next() {
			top := tx.Bucket(name)
			if top == nil {
				continue
			}
			tc := top.Cursor()
			for k, v := tc.First(); k != nil; k, v = tc.Next() {
				if v != nil {
					return top.Delete(k)
				}
			}
		}
		return nil
	})
	if err == nil {
		err = db.View(func(tx *bolt.Tx) error {
			if check(tx, "rw-error") > 0 {
				return fmt.Errorf("tx.Check failed after a write transaction")
			}
			return nil
		})
	}
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	return err
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: bbolt-check FILE")
		os.Exit(2)
	}
	file := os.Args[1]
	db, err := bolt.Open(file, 0400, &bolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		fmt.Printf("open-error %v\n", err)
		os.Exit(2)
	}
	w := &walker{digest: sha256.New()}
	err = db.View(func(tx *bolt.Tx) error {
		w.errors += check(tx, "check-error")
		fmt.Printf("hwm %d\n", tx.Size()/int64(db.Info().PageSize))
		w.walk(tx, nil, nil)
		var s bolt.BucketStats
		_ = tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			s.Add(b.Stats())
			return nil
		})
		fmt.Printf("stats buckets=%d inline=%d keyN=%d leaf=%d branch=%d leaf-overflow=%d branch-overflow=%d depth=%d\n",
			s.BucketN, s.InlineBucketN, s.KeyN, s.LeafPageN, s.BranchPageN, s.LeafOverflowN, s.BranchOverflowN, s.Depth)
		return nil
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		w.fail("walk-error", "%v", err)
	}
	fmt.Printf("buckets %d\n", w.buckets)
	fmt.Printf("keys %d\n", w.keys)
	fmt.Printf("digest %s\n", hex.EncodeToString(w.digest.Sum(nil)))
	if err := rwCheck(file); err != nil {
		w.fail("rw-error", "%v", err)
	} else {
		fmt.Println("rw-check ok")
	}
	if w.errors > 0 {
		fmt.Println("FAILED")
		os.Exit(1)
	}
	fmt.Println("ok")
}
