// Command filestoregen writes a deterministic Odoo-shaped filestore for
// bench/filestore.sh: files FIRST..FIRST+COUNT-1 of a fixed series, each
// stored as <dir>/<sha1[:2]>/<sha1> like Odoo does. Sizes are spread from
// 1 to 64 KiB (more small ones than large, as attachments are); about 60%
// of the files are incompressible (images, PDFs), the rest text.
//
//	filestoregen DIR FIRST COUNT
package main

import (
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
)

func main() {
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: filestoregen DIR FIRST COUNT")
		os.Exit(2)
	}
	first, err1 := strconv.Atoi(os.Args[2])
	count, err2 := strconv.Atoi(os.Args[3])
	if err1 != nil || err2 != nil || first < 0 || count < 0 {
		fmt.Fprintln(os.Stderr, "filestoregen: FIRST and COUNT are numbers")
		os.Exit(2)
	}
	var total int64
	for i := first; i < first+count; i++ {
		b := content(i)
		total += int64(len(b))
		sum := sha1.Sum(b)
		h := hex.EncodeToString(sum[:])
		p := filepath.Join(os.Args[1], h[:2], h)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			fmt.Fprintln(os.Stderr, "filestoregen:", err)
			os.Exit(1)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "filestoregen:", err)
			os.Exit(1)
		}
	}
	fmt.Printf("%d files, %d bytes\n", count, total)
}

var words = []string{"invoice", "total", "amount", "tax", "partner", "due", "date", "EUR", "payment", "order", "line", "qty"}

// content is file i of the series: the same bytes on every run.
func content(i int) []byte {
	rng := rand.New(rand.NewPCG(uint64(i), 0x0d00))
	// Log-uniform between 1 KiB and 64 KiB.
	size := int(1024 * pow2(rng.Float64()*6))
	b := make([]byte, 0, size)
	b = fmt.Appendf(b, "attachment %d\n", i)
	if rng.IntN(10) < 6 {
		for len(b) < size {
			b = append(b, byte(rng.Uint32()))
		}
	} else {
		for len(b) < size {
			b = append(b, words[rng.IntN(len(words))]...)
			b = append(b, ' ')
			b = strconv.AppendInt(b, int64(rng.IntN(100000)), 10)
			b = append(b, '\n')
		}
	}
	return b[:size]
}

func pow2(x float64) float64 {
	r := 1.0
	for x >= 1 {
		r *= 2
		x--
	}
	// 2^x for x in [0,1): good enough for a size spread.
	return r * (1 + x*(0.6931+x*(0.2402+x*0.0555)))
}
