// Independent check of a servicepoint audit export with Go's golang.org/x/mod/sumdb
// packages (Debian: golang-golang-x-mod-dev). Run in GOPATH mode:
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go run verify_export.go EXPORT_DIR [PROOF.tlog-proof]
//
// It opens the checkpoint with note.Open and the keys in log.vkey, recomputes the
// RFC 6962 root of entries.jsonl with tlog, and checks a tlog-proof with tlog.CheckRecord.
package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

type memHashes []tlog.Hash

func (m *memHashes) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		if x < 0 || x >= int64(len(*m)) {
			return nil, fmt.Errorf("hash %d not stored", x)
		}
		out[i] = (*m)[x]
	}
	return out, nil
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "FAIL: "+format+"\n", args...)
	os.Exit(1)
}

func verifiers(dir string) note.Verifiers {
	data, err := os.ReadFile(filepath.Join(dir, "log.vkey"))
	if err != nil {
		fail("%v", err)
	}
	var vs []note.Verifier
	for _, line := range strings.Fields(string(data)) {
		v, err := note.NewVerifier(line)
		if err != nil {
			fail("log.vkey: %v", err)
		}
		vs = append(vs, v)
	}
	return note.VerifierList(vs...)
}

func openCheckpoint(msg []byte, vs note.Verifiers) (int64, tlog.Hash) {
	n, err := note.Open(msg, vs)
	if err != nil {
		fail("note.Open: %v", err)
	}
	lines := strings.Split(n.Text, "\n")
	if len(lines) < 4 {
		fail("checkpoint body too short")
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil {
		fail("tree size: %v", err)
	}
	raw, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(raw) != tlog.HashSize {
		fail("root hash: %v", err)
	}
	var root tlog.Hash
	copy(root[:], raw)
	return size, root
}

func main() {
	if len(os.Args) < 2 {
		fail("usage: verify_export EXPORT_DIR [PROOF]")
	}
	dir := os.Args[1]
	vs := verifiers(dir)
	msg, err := os.ReadFile(filepath.Join(dir, "checkpoint"))
	if err != nil {
		fail("%v", err)
	}
	size, root := openCheckpoint(msg, vs)

	f, err := os.Open(filepath.Join(dir, "entries.jsonl"))
	if err != nil {
		fail("%v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	var stored memHashes
	var n int64
	for sc.Scan() {
		hs, err := tlog.StoredHashes(n, sc.Bytes(), &stored)
		if err != nil {
			fail("StoredHashes(%d): %v", n, err)
		}
		stored = append(stored, hs...)
		n++
	}
	if n != size {
		fail("entries.jsonl has %d entries, checkpoint size is %d", n, size)
	}
	th, err := tlog.TreeHash(size, &stored)
	if err != nil {
		fail("TreeHash: %v", err)
	}
	if th != root {
		fail("root mismatch: entries give %s, checkpoint says %s", th, root)
	}
	fmt.Printf("OK checkpoint size %d root %s\n", size, root)

	if len(os.Args) > 2 {
		data, err := os.ReadFile(os.Args[2])
		if err != nil {
			fail("%v", err)
		}
		parts := bytes.SplitN(data, []byte("\n\n"), 2)
		psize, proot := openCheckpoint(parts[1], vs)
		var leaf []byte
		var index int64 = -1
		var proof tlog.RecordProof
		for i, line := range strings.Split(string(parts[0]), "\n") {
			switch {
			case i == 0:
				if line != "c2sp.org/tlog-proof@v1" {
					fail("proof header %q", line)
				}
			case strings.HasPrefix(line, "extra "):
				leaf, _ = base64.StdEncoding.DecodeString(line[6:])
			case strings.HasPrefix(line, "index "):
				index, _ = strconv.ParseInt(line[6:], 10, 64)
			default:
				raw, err := base64.StdEncoding.DecodeString(line)
				if err != nil || len(raw) != tlog.HashSize {
					fail("proof hash %q", line)
				}
				var h tlog.Hash
				copy(h[:], raw)
				proof = append(proof, h)
			}
		}
		if err := tlog.CheckRecord(proof, psize, proot, index, tlog.RecordHash(leaf)); err != nil {
			fail("CheckRecord: %v", err)
		}
		fmt.Printf("OK proof of entry %d in tree size %d\n", index, psize)
	}
}
