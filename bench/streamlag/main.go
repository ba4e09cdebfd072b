// Command streamlag measures how far `walvault stream` trails its primary,
// for bench/stream.sh. Every -interval it samples the primary's
// pg_current_wal_flush_lsn(); every -poll it scrapes the streamer's
// walvault_stream_uploaded_lsn_bytes. After -duration it keeps scraping
// (up to -drain) until the upload reaches the last flush sample, then
// prints:
//
//   - WAL throughput: MB/s of WAL the primary flushed and the streamer
//     stored during the sampled window;
//   - commit-to-durable-upload lag, median / p90 / p99 / max: for each flush
//     sample, the time until the uploaded LSN first reached it. Everything
//     committed by the sample's time is in the repository that much later.
//     The resolution is -poll.
//
// With -csv FILE it also writes every flush sample and its lag.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

type point struct {
	t   time.Time
	lsn uint64
}

func main() {
	pgURL := flag.String("pg-url", "", "libpq URL of the primary")
	metricsURL := flag.String("metrics", "", "the streamer's /metrics URL")
	interval := flag.Duration("interval", 250*time.Millisecond, "flush LSN sampling interval")
	poll := flag.Duration("poll", 50*time.Millisecond, "uploaded LSN scraping interval (the lag's resolution)")
	duration := flag.Duration("duration", 60*time.Second, "how long to sample the primary")
	drain := flag.Duration("drain", 60*time.Second, "how long to wait afterwards for the upload to catch up")
	csvPath := flag.String("csv", "", "write the samples here")
	flag.Parse()
	if *pgURL == "" || *metricsURL == "" {
		fmt.Fprintln(os.Stderr, "usage: streamlag -pg-url URL -metrics http://HOST:PORT/metrics [-duration 60s]")
		os.Exit(2)
	}
	if err := run(*pgURL, *metricsURL, *interval, *poll, *duration, *drain, *csvPath); err != nil {
		fmt.Fprintln(os.Stderr, "streamlag:", err)
		os.Exit(1)
	}
}

func run(pgURL, metricsURL string, interval, poll, duration, drain time.Duration, csvPath string) error {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pgURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	client := &http.Client{Timeout: 2 * time.Second}

	// The uploaded LSN, scraped in the background at the finer interval.
	var (
		mu       sync.Mutex
		uploads  []point
		scrapeOK int
		stop     = make(chan struct{})
		done     = make(chan struct{})
	)
	go func() {
		defer close(done)
		tick := time.NewTicker(poll)
		defer tick.Stop()
		for {
			v, err := scrape(client, metricsURL, "walvault_stream_uploaded_lsn_bytes")
			now := time.Now()
			if err == nil {
				mu.Lock()
				uploads = append(uploads, point{now, uint64(v)})
				scrapeOK++
				mu.Unlock()
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()

	var flushes []point
	start := time.Now()
	tick := time.NewTicker(interval)
	for time.Since(start) < duration {
		var s string
		if err := conn.QueryRow(ctx, "SELECT pg_current_wal_flush_lsn()::text").Scan(&s); err != nil {
			close(stop)
			return fmt.Errorf("flush LSN: %w", err)
		}
		l, err := parseLSN(s)
		if err != nil {
			close(stop)
			return err
		}
		flushes = append(flushes, point{time.Now(), l})
		<-tick.C
	}
	tick.Stop()
	end := time.Now()
	if len(flushes) < 2 {
		close(stop)
		return errors.New("too few samples")
	}
	last := flushes[len(flushes)-1].lsn
	deadline := time.Now().Add(drain)
	for time.Now().Before(deadline) {
		mu.Lock()
		caught := len(uploads) > 0 && uploads[len(uploads)-1].lsn >= last
		mu.Unlock()
		if caught {
			break
		}
		time.Sleep(poll)
	}
	close(stop)
	<-done
	if scrapeOK == 0 {
		return fmt.Errorf("could not scrape walvault_stream_uploaded_lsn_bytes from %s", metricsURL)
	}

	// Throughput over the sampling window. The uploaded LSN at a time is the
	// newest scrape at or before it.
	uploadedAt := func(t time.Time) uint64 {
		var v uint64
		for _, u := range uploads {
			if u.t.After(t) {
				break
			}
			v = u.lsn
		}
		return v
	}
	secs := end.Sub(start).Seconds()
	genMB := float64(flushes[len(flushes)-1].lsn-flushes[0].lsn) / 1e6
	// From the first scrape in the window that knows the uploaded LSN.
	upMB, upSecs := 0.0, secs
	for _, u := range uploads {
		if !u.t.Before(flushes[0].t) && u.lsn != 0 {
			upMB, upSecs = float64(uploadedAt(end)-u.lsn)/1e6, end.Sub(u.t).Seconds()
			break
		}
	}

	// Lag of each flush sample: until the first scrape that shows it stored.
	var lags []float64
	missed := 0
	j := 0
	csvLines := []string{"unix_time,flush_lsn,lag_seconds"}
	for _, f := range flushes {
		for j < len(uploads) && uploads[j].lsn < f.lsn {
			j++
		}
		// Scrapes before the sample cannot show it stored after it.
		k := j
		for k < len(uploads) && uploads[k].t.Before(f.t) {
			k++
		}
		lag := -1.0
		if k < len(uploads) {
			lag = uploads[k].t.Sub(f.t).Seconds()
			lags = append(lags, lag)
		} else {
			missed++
		}
		csvLines = append(csvLines, fmt.Sprintf("%.3f,%s,%.3f", float64(f.t.UnixMilli())/1000, formatLSN(f.lsn), lag))
	}
	if csvPath != "" {
		if err := os.WriteFile(csvPath, []byte(strings.Join(csvLines, "\n")+"\n"), 0o644); err != nil {
			return err
		}
	}
	slices.Sort(lags)
	fmt.Printf("samples: %d flush LSN samples every %v over %.1f s; %d uploaded-LSN scrapes every %v\n",
		len(flushes), interval, secs, scrapeOK, poll)
	fmt.Printf("WAL generated: %.1f MB (%.2f MB/s)\n", genMB, genMB/secs)
	fmt.Printf("WAL uploaded:  %.1f MB (%.2f MB/s) during the same window\n", upMB, upMB/upSecs)
	if len(lags) == 0 {
		return fmt.Errorf("the upload never reached any flush sample (uploaded %s, last flush %s)",
			formatLSN(uploadedAt(time.Now())), formatLSN(last))
	}
	fmt.Printf("commit -> durable upload lag (s): median %.3f  p90 %.3f  p99 %.3f  max %.3f  (resolution %v)\n",
		quantile(lags, 0.5), quantile(lags, 0.9), quantile(lags, 0.99), lags[len(lags)-1], poll)
	if missed > 0 {
		fmt.Printf("WARNING: %d samples never reached the repository within the %v drain\n", missed, drain)
	}
	return nil
}

// quantile is the nearest-rank quantile of sorted values.
func quantile(sorted []float64, q float64) float64 {
	i := int(q*float64(len(sorted))+0.999999) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func scrape(client *http.Client, url, name string) (float64, error) {
	resp, err := client.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("%s not in %s", name, url)
}

func parseLSN(s string) (uint64, error) {
	hi, lo, ok := strings.Cut(s, "/")
	h, err1 := strconv.ParseUint(hi, 16, 32)
	l, err2 := strconv.ParseUint(lo, 16, 32)
	if !ok || err1 != nil || err2 != nil {
		return 0, fmt.Errorf("not an LSN: %q", s)
	}
	return h<<32 | l, nil
}

func formatLSN(l uint64) string { return fmt.Sprintf("%X/%X", l>>32, uint32(l)) }
