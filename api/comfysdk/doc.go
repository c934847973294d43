// Package comfysdk is where the official Comfy TypeScript SDK (@comfyorg/sdk) is
// tested against comfyq's Comfy API v2 (/api/v2): e2e/ installs the SDK from npm at a
// pinned version and runs it, unchanged, with node --test against a real stack
// (Redis, S3, the ComfyUI simulator, a worker and the API). scripts/test.sh runs it
// for ./api/comfysdk/... and for the whole suite. The package has no Go code.
package comfysdk
