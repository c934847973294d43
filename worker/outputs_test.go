package worker_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/url"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/internal/testenv"
	"github.com/comfyq/comfyq/job"
	"github.com/comfyq/comfyq/storage"
)

// TestOutputKeyOpensWithAnyS3Client takes an output's bucket and key from the Job
// JSON and GETs the object with a plain S3 client, knowing nothing of comfyq's
// storage prefix: the key must be the object's whole key in the bucket.
func TestOutputKeyOpensWithAnyS3Client(t *testing.T) {
	t.Parallel()
	s3URL := testenv.S3URL(t) // s3://bucket/test/<unique>?endpoint=…: a prefix
	u, err := url.Parse(s3URL)
	require.NoError(t, err)
	require.NotEmpty(t, u.Path, "the test store must have a prefix")
	b := setup(t, setupOpts{noWorker: true})
	store, err := storage.Open(b.ctx, s3URL)
	require.NoError(t, err)
	b.store = store
	b.stop = startWorker(t, b, nil)

	j := b.wait(t, b.submit(t, job.Spec{Workflow: json.RawMessage(emptyImageWorkflow)}).ID)
	require.Equal(t, job.StatusSucceeded, j.Status, "error: %+v", j.Error)
	require.Len(t, j.Outputs, 1)
	raw, err := json.Marshal(j)
	require.NoError(t, err)
	var doc struct {
		Outputs []struct {
			Bucket string `json:"bucket"`
			Key    string `json:"key"`
			SHA256 string `json:"sha256"`
		} `json:"outputs"`
	}
	require.NoError(t, json.Unmarshal(raw, &doc))
	o := doc.Outputs[0]
	require.Equal(t, u.Host, o.Bucket)

	ctx := context.Background()
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion(u.Query().Get("region")))
	require.NoError(t, err)
	client := awss3.NewFromConfig(cfg, func(opts *awss3.Options) {
		opts.BaseEndpoint = aws.String(u.Query().Get("endpoint"))
		opts.UsePathStyle = true
	})
	resp, err := client.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String(o.Bucket), Key: aws.String(o.Key)})
	require.NoError(t, err, "GET s3://%s/%s", o.Bucket, o.Key)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	sum := sha256.Sum256(data)
	require.Equal(t, o.SHA256, hex.EncodeToString(sum[:]))
}
