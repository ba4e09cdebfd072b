package s3

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	awsretry "github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/walvault/walvault/storage"
)

// Options configure a Store.
type Options struct {
	// Bucket is required.
	Bucket string
	// Prefix is prepended to every key, followed by "/". Leading and
	// trailing slashes are ignored; empty means the bucket root.
	Prefix string
	// Endpoint is the base URL of an S3-compatible service
	// ("http://127.0.0.1:9000"); empty means AWS.
	Endpoint string
	// Region; empty means the SDK's default chain (AWS_REGION, profile),
	// then "us-east-1".
	Region string
	// PathStyle addresses buckets as ENDPOINT/BUCKET instead of
	// BUCKET.ENDPOINT, which MinIO and Ceph usually need.
	PathStyle bool
	// AccessKey, SecretKey and SessionToken are static credentials. When
	// AccessKey is empty the SDK's default chain is used: environment,
	// shared files, web identity, ECS/EC2 roles.
	AccessKey, SecretKey, SessionToken string
	// CABundle holds extra PEM root certificates for a private endpoint.
	// It cannot be combined with HTTPClient.
	CABundle []byte
	// HTTPClient replaces the SDK's HTTP client.
	HTTPClient *http.Client
	// SDKAttempts is the SDK's own attempt count per request (default 3).
	SDKAttempts int
	// ObjectLock, when its Period is set, writes every object except
	// temporary ones (PutOptions.Temporary) with an S3 Object Lock
	// retention: nobody, not even these credentials, can delete or
	// overwrite it for good before the period ends. The bucket must have
	// been created with Object Lock enabled.
	ObjectLock ObjectLock
}

// ObjectLock is an S3 Object Lock retention setting.
type ObjectLock struct {
	// Mode is "GOVERNANCE" (users with s3:BypassGovernanceRetention may
	// still shorten it) or "COMPLIANCE" (nobody can, not even the root
	// account).
	Mode string
	// Period is how long each object is retained from its upload.
	Period time.Duration
}

// validate checks the setting.
func (l ObjectLock) validate() error {
	if l.Period == 0 && l.Mode == "" {
		return nil
	}
	if l.Period <= 0 {
		return errors.New("s3 store: object lock needs a positive retention period")
	}
	switch l.Mode {
	case "GOVERNANCE", "COMPLIANCE":
		return nil
	default:
		return fmt.Errorf("s3 store: object lock mode %q is not GOVERNANCE or COMPLIANCE", l.Mode)
	}
}

// Store is a storage.Store on an S3 bucket. It is safe for concurrent use.
type Store struct {
	client *s3.Client
	bucket string
	prefix string // without slashes; "" for the bucket root
	lock   ObjectLock
	now    func() time.Time
}

var _ storage.Store = (*Store)(nil)

// New returns a Store. It resolves credentials and region but sends no
// request, so it succeeds with a missing bucket or bad credentials; the
// first operation reports those.
func New(ctx context.Context, opts Options) (*Store, error) {
	if opts.Bucket == "" {
		return nil, errors.New("s3 store: no bucket")
	}
	prefix := strings.Trim(opts.Prefix, "/")
	if prefix != "" && !storage.ValidKey(prefix) {
		return nil, fmt.Errorf("s3 store: invalid prefix %q", opts.Prefix)
	}
	if (opts.AccessKey == "") != (opts.SecretKey == "") {
		return nil, errors.New("s3 store: static credentials need both an access key and a secret key")
	}
	if err := opts.ObjectLock.validate(); err != nil {
		return nil, err
	}
	if opts.CABundle != nil && opts.HTTPClient != nil {
		return nil, errors.New("s3 store: CABundle and HTTPClient cannot both be set; put the CA into the HTTP client's TLS config")
	}
	attempts := opts.SDKAttempts
	if attempts <= 0 {
		attempts = 3
	}

	loadOpts := []func(*config.LoadOptions) error{
		// Many S3-compatible servers reject the streaming trailer checksums
		// the SDK sends by default since 2025.
		config.WithRequestChecksumCalculation(aws.RequestChecksumCalculationWhenRequired),
		config.WithResponseChecksumValidation(aws.ResponseChecksumValidationWhenRequired),
		// A few quick SDK-level attempts; longer waits are the retry
		// wrapper's job, which sees our Transient marks. No client-side
		// retry quota: the wrapper bounds the total.
		config.WithRetryer(func() aws.Retryer {
			return awsretry.NewStandard(func(o *awsretry.StandardOptions) {
				o.MaxAttempts = attempts
				o.RateLimiter = ratelimit.None
			})
		}),
	}
	if opts.Region != "" {
		loadOpts = append(loadOpts, config.WithRegion(opts.Region))
	}
	if opts.AccessKey != "" {
		loadOpts = append(loadOpts, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(opts.AccessKey, opts.SecretKey, opts.SessionToken)))
	}
	if opts.CABundle != nil {
		loadOpts = append(loadOpts, config.WithCustomCABundle(bytes.NewReader(opts.CABundle)))
	}
	cfg, err := config.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		return nil, fmt.Errorf("s3 store: load AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		if opts.Endpoint != "" {
			o.BaseEndpoint = aws.String(opts.Endpoint)
		}
		o.UsePathStyle = opts.PathStyle
		if opts.HTTPClient != nil {
			// Set here rather than in LoadDefaultConfig, which refuses a
			// custom client when AWS_CA_BUNDLE is set.
			o.HTTPClient = opts.HTTPClient
		}
	})
	return &Store{client: client, bucket: opts.Bucket, prefix: prefix, lock: opts.ObjectLock, now: time.Now}, nil
}

// String returns "s3://bucket/prefix".
func (s *Store) String() string {
	if s.prefix == "" {
		return "s3://" + s.bucket
	}
	return "s3://" + s.bucket + "/" + s.prefix
}

func (s *Store) objectKey(key string) string {
	if s.prefix == "" {
		return key
	}
	return s.prefix + "/" + key
}

func checkKey(op, key string) error {
	if !storage.ValidKey(key) {
		return fmt.Errorf("s3 %s: invalid key %q", op, key)
	}
	return nil
}

// Put uploads body with a single PutObject, which S3 applies atomically.
//
// With IfAbsent the request carries "If-None-Match: *" and an existing
// object makes it fail with ErrExist. A Put whose answer is lost (timeout,
// reset) may nevertheless have stored the object; when it is retried, by
// the SDK or by the caller, it finds its own object. So on a conflict Put
// reads the stored object back and succeeds when it holds exactly the
// bytes being put.
func (s *Store) Put(ctx context.Context, key string, body io.ReadSeeker, opts storage.PutOptions) error {
	if err := checkKey("put", key); err != nil {
		return err
	}
	start, err := body.Seek(0, io.SeekCurrent)
	if err != nil {
		return fmt.Errorf("s3 put %s: body: %w", key, err)
	}
	end, err := body.Seek(0, io.SeekEnd)
	if err != nil {
		return fmt.Errorf("s3 put %s: body: %w", key, err)
	}
	if _, err := body.Seek(start, io.SeekStart); err != nil {
		return fmt.Errorf("s3 put %s: body: %w", key, err)
	}
	in := &s3.PutObjectInput{
		Bucket:        aws.String(s.bucket),
		Key:           aws.String(s.objectKey(key)),
		Body:          body,
		ContentLength: aws.Int64(end - start),
	}
	if opts.IfAbsent {
		in.IfNoneMatch = aws.String("*")
	}
	if s.lock.Period > 0 && !opts.Temporary {
		in.ObjectLockMode = types.ObjectLockMode(s.lock.Mode)
		in.ObjectLockRetainUntilDate = aws.Time(s.now().Add(s.lock.Period).UTC())
		// S3 requires a content checksum on a PUT with a retention; the
		// SDK adds one only as a streaming trailer, which many
		// S3-compatible servers refuse. Content-MD5 works everywhere.
		sum, err := md5Body(body, start)
		if err != nil {
			return fmt.Errorf("s3 put %s: body: %w", key, err)
		}
		in.ContentMD5 = aws.String(sum)
	}
	if _, err := s.client.PutObject(ctx, in); err != nil {
		if opts.IfAbsent && ctx.Err() == nil && isExist(err) {
			// The object may be our own: an earlier attempt (the SDK's
			// or the caller's) stored it and its answer was lost. Only
			// the very bytes we are putting make that a success.
			// A transient failure to read it back is returned as such,
			// so the Put is tried again; any other leaves ErrExist.
			same, cerr := s.holds(ctx, key, body, start, end-start)
			switch {
			case cerr != nil && storage.IsTransient(cerr):
				return fmt.Errorf("s3 put %s: the key exists; reading it back to compare: %w", key, cerr)
			case cerr != nil:
				return fmt.Errorf("s3 put %s: %w (%v; it could not be read back to compare: %v)", key, storage.ErrExist, err, cerr)
			case same:
				return nil
			}
			return fmt.Errorf("s3 put %s: %w (%v)", key, storage.ErrExist, err)
		}
		return s.wrap(ctx, "put", key, err)
	}
	return nil
}

// holds reports whether the object under key is exactly the size bytes of
// body from start. Errors reading the object keep their transient mark, so
// a retry wrapper tries the Put (and this comparison) again.
func (s *Store) holds(ctx context.Context, key string, want io.ReadSeeker, start, size int64) (bool, error) {
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{
		Bucket: aws.String(s.bucket),
		Key:    aws.String(s.objectKey(key)),
	})
	if err != nil {
		if ctx.Err() == nil && apiCode(err) == "NoSuchKey" {
			return false, nil // removed meanwhile: not ours to claim
		}
		return false, s.wrap(ctx, "get", key, err)
	}
	defer out.Body.Close()
	if out.ContentLength != nil && *out.ContentLength != size {
		return false, nil
	}
	if _, err := want.Seek(start, io.SeekStart); err != nil {
		return false, err
	}
	stored := &body{rc: out.Body, ctx: ctx, key: key}
	a, b := make([]byte, 64<<10), make([]byte, 64<<10)
	for n := int64(0); ; {
		na, err := io.ReadFull(stored, a)
		end := err == io.EOF || err == io.ErrUnexpectedEOF
		if err != nil && !end {
			return false, err
		}
		if n+int64(na) > size {
			return false, nil
		}
		if _, err := io.ReadFull(want, b[:na]); err != nil {
			return false, err
		}
		if !bytes.Equal(a[:na], b[:na]) {
			return false, nil
		}
		n += int64(na)
		if end {
			return n == size, nil
		}
	}
}

// Get opens the object.
func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := checkKey("get", key); err != nil {
		return nil, err
	}
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{
		Bucket: aws.String(s.bucket),
		Key:    aws.String(s.objectKey(key)),
	})
	if err != nil {
		return nil, s.wrap(ctx, "get", key, err)
	}
	return &body{rc: out.Body, ctx: ctx, key: key}, nil
}

// GetRange opens a byte range with a Range request. A range starting at
// or after the end of the object yields an empty reader, as S3's
// "416 InvalidRange" answer is only given for existing objects.
func (s *Store) GetRange(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	if err := checkKey("get", key); err != nil {
		return nil, err
	}
	if offset < 0 || length < 0 {
		return nil, fmt.Errorf("s3 get %s: invalid range offset %d length %d", key, offset, length)
	}
	if length == 0 {
		if _, err := s.Stat(ctx, key); err != nil {
			return nil, err
		}
		return io.NopCloser(bytes.NewReader(nil)), nil
	}
	last := int64(math.MaxInt64)
	if offset <= math.MaxInt64-length {
		last = offset + length - 1
	}
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{
		Bucket: aws.String(s.bucket),
		Key:    aws.String(s.objectKey(key)),
		Range:  aws.String("bytes=" + strconv.FormatInt(offset, 10) + "-" + strconv.FormatInt(last, 10)),
	})
	if err != nil {
		if ctx.Err() == nil && (apiCode(err) == "InvalidRange" || httpStatus(err) == http.StatusRequestedRangeNotSatisfiable) {
			return io.NopCloser(bytes.NewReader(nil)), nil
		}
		return nil, s.wrap(ctx, "get", key, err)
	}
	return &body{rc: out.Body, ctx: ctx, key: key}, nil
}

// Stat uses HeadObject. Its 404 answer has no body, so it cannot tell a
// missing object from a missing bucket; Stat then asks HeadBucket, so that a
// wrong bucket name is an error and not "not found".
func (s *Store) Stat(ctx context.Context, key string) (storage.ObjectInfo, error) {
	if err := checkKey("stat", key); err != nil {
		return storage.ObjectInfo{}, err
	}
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{
		Bucket: aws.String(s.bucket),
		Key:    aws.String(s.objectKey(key)),
	})
	if err != nil {
		if ctx.Err() == nil && httpStatus(err) == http.StatusNotFound {
			if berr := s.checkBucket(ctx); berr != nil {
				return storage.ObjectInfo{}, fmt.Errorf("s3 stat %s: %w", key, berr)
			}
			return storage.ObjectInfo{}, fmt.Errorf("s3 stat %s: %w", key, storage.ErrNotExist)
		}
		return storage.ObjectInfo{}, s.wrap(ctx, "stat", key, err)
	}
	return storage.ObjectInfo{
		Key:         key,
		Size:        aws.ToInt64(out.ContentLength),
		ModTime:     aws.ToTime(out.LastModified),
		RetainUntil: aws.ToTime(out.ObjectLockRetainUntilDate),
	}, nil
}

// md5Body returns the base64 MD5 of body from start to its end, and seeks
// it back to start.
func md5Body(body io.ReadSeeker, start int64) (string, error) {
	h := md5.New()
	if _, err := io.Copy(h, body); err != nil {
		return "", err
	}
	if _, err := body.Seek(start, io.SeekStart); err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(h.Sum(nil)), nil
}

// checkBucket returns an error if the bucket is known to be missing or
// HeadBucket fails transiently. A refusal (403: the credentials may lack
// s3:ListBucket) proves nothing and is not an error.
func (s *Store) checkBucket(ctx context.Context) error {
	_, err := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(s.bucket)})
	switch {
	case err == nil:
		return nil
	case httpStatus(err) == http.StatusNotFound:
		return fmt.Errorf("bucket %s does not exist", s.bucket)
	case httpStatus(err) == http.StatusForbidden:
		return nil
	default:
		return s.wrap(ctx, "head bucket", s.bucket, err)
	}
}

// Delete removes the object. S3's DeleteObject succeeds for missing keys,
// so Delete asks Stat first to report ErrNotExist as the contract requires;
// an object deleted by someone else in between goes unnoticed.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := checkKey("delete", key); err != nil {
		return err
	}
	oi, err := s.Stat(ctx, key)
	if err != nil {
		return fmt.Errorf("s3 delete: %w", err)
	}
	if oi.Retained(s.now()) {
		return &storage.RetainedError{Key: key, Until: oi.RetainUntil}
	}
	_, err = s.client.DeleteObject(ctx, &s3.DeleteObjectInput{
		Bucket: aws.String(s.bucket),
		Key:    aws.String(s.objectKey(key)),
	})
	if err != nil {
		return s.wrap(ctx, "delete", key, err)
	}
	return nil
}

// List uses ListObjectsV2, which returns keys in UTF-8 binary order, the
// same as Go's string order. Objects whose names are not valid keys (written
// by other tools) are skipped.
func (s *Store) List(ctx context.Context, prefix string, fn func(storage.ObjectInfo) error) error {
	if !prefixCanMatch(prefix) {
		return nil // and do not send servers names they may refuse
	}
	full := prefix
	if s.prefix != "" {
		full = s.prefix + "/" + prefix
	}
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{
		Bucket: aws.String(s.bucket),
		Prefix: aws.String(full),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return s.wrap(ctx, "list", prefix, err)
		}
		for _, obj := range page.Contents {
			k := aws.ToString(obj.Key)
			if s.prefix != "" {
				k = strings.TrimPrefix(k, s.prefix+"/")
			}
			if !storage.ValidKey(k) || !strings.HasPrefix(k, prefix) {
				continue
			}
			if err := fn(storage.ObjectInfo{Key: k, Size: aws.ToInt64(obj.Size), ModTime: aws.ToTime(obj.LastModified)}); err != nil {
				return err
			}
		}
	}
	return nil
}

// prefixCanMatch reports whether some valid key starts with prefix: its
// complete segments must be valid, and its last, partial one must not hold
// a character that keys cannot.
func prefixCanMatch(prefix string) bool {
	i := strings.LastIndexByte(prefix, '/')
	if i >= 0 && !storage.ValidKey(prefix[:i]) {
		return false
	}
	return !strings.ContainsAny(prefix[i+1:], "\x00\\")
}

// body marks failures while reading an object as transient where a new
// request could succeed (a connection cut midway).
type body struct {
	rc  io.ReadCloser
	ctx context.Context
	key string
}

func (b *body) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if err != nil && err != io.EOF {
		err = classify(b.ctx, fmt.Errorf("s3 get %s: read: %w", b.key, err))
	}
	return n, err
}

func (b *body) Close() error { return b.rc.Close() }

// wrap adds context to err and maps it onto the storage sentinels.
func (s *Store) wrap(ctx context.Context, op, key string, err error) error {
	if ctx.Err() == nil && isNotExist(err) {
		return fmt.Errorf("s3 %s %s: %w (%v)", op, key, storage.ErrNotExist, err)
	}
	return classify(ctx, fmt.Errorf("s3 %s %s: %w", op, key, err))
}

// isNotExist is true for a missing object, never for a missing bucket.
func isNotExist(err error) bool {
	switch apiCode(err) {
	case "NoSuchKey", "NotFound":
		return true
	}
	return false
}

func isExist(err error) bool {
	switch apiCode(err) {
	case "PreconditionFailed", "ConditionalRequestConflict":
		return true
	}
	return httpStatus(err) == http.StatusPreconditionFailed
}

// classify marks err transient when a later attempt may succeed: 5xx, 429
// and 408 answers, throttling codes, timeouts and broken connections. An
// error of a cancelled or expired ctx is never transient.
func classify(ctx context.Context, err error) error {
	if ctx.Err() != nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if transient(err) {
		return storage.Transient(err)
	}
	return err
}

var transientCodes = map[string]bool{
	"SlowDown": true, "RequestTimeout": true, "RequestTimeoutException": true,
	"InternalError": true, "ServiceUnavailable": true, "Throttling": true,
	"ThrottlingException": true, "RequestThrottled": true, "TooManyRequests": true,
	"RequestLimitExceeded": true, "BandwidthLimitExceeded": true,
	"XMinioServerNotInitialized": true, "XMinioReadQuorum": true, "XMinioWriteQuorum": true,
}

func transient(err error) bool {
	if transientCodes[apiCode(err)] {
		return true
	}
	if st := httpStatus(err); st >= 500 || st == http.StatusTooManyRequests || st == http.StatusRequestTimeout {
		return true
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, syscall.ECONNABORTED) {
		return true
	}
	var quota ratelimit.QuotaExceededError
	if errors.As(err, &quota) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return true // dial, read, write failures: network trouble
	}
	// Whatever else the SDK itself would retry (its retries are exhausted).
	return awsretry.IsErrorRetryables(awsretry.DefaultRetryables).IsErrorRetryable(err) == aws.TrueTernary
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func httpStatus(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}
