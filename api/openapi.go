package api

import (
	"bytes"
	_ "embed"

	"github.com/gin-gonic/gin"
)

// openAPIDoc is api/openapi.yaml, served at GET /openapi.yaml. A test in
// daemon/ validates the running gateway's answers against it.
//
//go:embed openapi.yaml
var openAPIDoc []byte

// OpenAPI returns a copy of the OpenAPI 3 document (YAML) of the HTTP API.
func OpenAPI() []byte { return bytes.Clone(openAPIDoc) }

// serveOpenAPI answers GET /openapi.yaml (media type of RFC 9512).
func serveOpenAPI(c *gin.Context) { c.Data(200, "application/yaml", openAPIDoc) }
