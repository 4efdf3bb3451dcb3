package mesh

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/meshd/meshd/mesh/api"
)

// apiError is an error with the HTTP status it is answered with. Its text
// is what meshctl prints, so it reads as one line for a person.
type apiError struct {
	code int
	msg  string
}

func (e *apiError) Error() string { return e.msg }

func notFound(format string, args ...any) error {
	return &apiError{code: http.StatusNotFound, msg: fmt.Sprintf(format, args...)}
}

func invalid(format string, args ...any) error {
	return &apiError{code: http.StatusBadRequest, msg: fmt.Sprintf(format, args...)}
}

func conflict(format string, args ...any) error {
	return &apiError{code: http.StatusConflict, msg: fmt.Sprintf(format, args...)}
}

func unauthorized(format string, args ...any) error {
	return &apiError{code: http.StatusUnauthorized, msg: fmt.Sprintf(format, args...)}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v) // the client is gone if this fails
}

func writeError(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	var ae *apiError
	if errors.As(err, &ae) {
		code = ae.code
	}
	writeJSON(w, code, api.Error{Message: err.Error()})
}
