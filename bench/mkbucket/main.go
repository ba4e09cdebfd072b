// Command mkbucket creates a bucket on an S3-compatible server (MinIO) for
// bench/run.sh, which has no mc client. It waits for the server to answer
// first. It reads MKBUCKET_ENDPOINT (host:port, plain HTTP), AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY and takes the bucket name as its argument.
package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: MKBUCKET_ENDPOINT=host:port AWS_ACCESS_KEY_ID=… AWS_SECRET_ACCESS_KEY=… mkbucket BUCKET")
		os.Exit(2)
	}
	if err := run(os.Getenv("MKBUCKET_ENDPOINT"), os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "mkbucket:", err)
		os.Exit(1)
	}
}

func run(endpoint, bucket string) error {
	if endpoint == "" {
		return fmt.Errorf("MKBUCKET_ENDPOINT is not set")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if err := waitHealthy(ctx, "http://"+endpoint+"/minio/health/live"); err != nil {
		return err
	}
	c, err := minio.New(endpoint, &minio.Options{
		Creds:  credentials.NewStaticV4(os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY"), ""),
		Secure: false,
		Region: "us-east-1",
	})
	if err != nil {
		return err
	}
	if err := c.MakeBucket(ctx, bucket, minio.MakeBucketOptions{Region: "us-east-1"}); err != nil {
		return fmt.Errorf("create bucket %s: %w", bucket, err)
	}
	return nil
}

func waitHealthy(ctx context.Context, url string) error {
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not healthy: %v (last error: %v)", url, ctx.Err(), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
