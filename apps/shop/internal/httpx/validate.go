package httpx

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
)

// FieldError is one entry of a 422 answer: where, what, and a machine type.
type FieldError struct {
	Loc  []any  `json:"loc"`
	Msg  string `json:"msg"`
	Type string `json:"type"`
}

// ValidationError is answered as 422 {"detail": [FieldError...]}.
type ValidationError struct {
	Fields []FieldError
}

func (e *ValidationError) Error() string {
	parts := make([]string, 0, len(e.Fields))
	for _, f := range e.Fields {
		parts = append(parts, fmt.Sprintf("%v: %s", f.Loc, f.Msg))
	}
	return "validation failed: " + strings.Join(parts, "; ")
}

// Invalid is a ValidationError about one location.
func Invalid(msg, errType string, loc ...any) *ValidationError {
	return &ValidationError{Fields: []FieldError{{Loc: loc, Msg: msg, Type: errType}}}
}

// maxBodyBytes bounds what a service reads of a request body.
const maxBodyBytes = 1 << 20

// Object is a JSON object being validated field by field. Errors collect in a
// shared list so one answer names every bad field.
type Object struct {
	fields map[string]json.RawMessage
	loc    []any
	errs   *[]FieldError
}

// DecodeObject reads the request body as a JSON object. Malformed JSON or a
// body that is not an object is a 422 naming the body.
func DecodeObject(r *http.Request) (*Object, error) {
	raw, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxBodyBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, Errorf(http.StatusRequestEntityTooLarge, "Request body larger than %d bytes", maxBodyBytes)
		}
		return nil, Errorf(http.StatusBadRequest, "Reading request body: %v", err)
	}
	return ParseObject(raw)
}

// ParseObject validates raw as a JSON object.
func ParseObject(raw []byte) (*Object, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, Invalid("Field required: the request body must be a JSON object", "missing", "body")
	}
	var generic any
	decoder := json.NewDecoder(bytes.NewReader(raw))
	decoder.UseNumber()
	if err := decoder.Decode(&generic); err != nil {
		return nil, Invalid("JSON decode error: "+describeJSONError(err), "json_invalid", "body")
	}
	if decoder.More() {
		return nil, Invalid("JSON decode error: unexpected data after the JSON value", "json_invalid", "body")
	}
	if _, isObject := generic.(map[string]any); !isObject {
		return nil, Invalid("Input should be a valid JSON object", "model_attributes_type", "body")
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return nil, Invalid("JSON decode error: "+describeJSONError(err), "json_invalid", "body")
	}
	return &Object{fields: fields, loc: []any{"body"}, errs: &[]FieldError{}}, nil
}

func describeJSONError(err error) string {
	var syntaxErr *json.SyntaxError
	if errors.As(err, &syntaxErr) {
		return fmt.Sprintf("%v (at byte %d)", syntaxErr, syntaxErr.Offset)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return "unexpected end of JSON input"
	}
	return err.Error()
}

func (o *Object) at(name any) []any {
	loc := make([]any, 0, len(o.loc)+1)
	return append(append(loc, o.loc...), name)
}

// Fail records a problem with a field found by a check of the caller's own.
func (o *Object) Fail(name string, msg, errType string) { o.fail(name, msg, errType) }

func (o *Object) fail(name any, msg, errType string) {
	*o.errs = append(*o.errs, FieldError{Loc: o.at(name), Msg: msg, Type: errType})
}

// Err is the collected validation error, or nil.
func (o *Object) Err() error {
	if len(*o.errs) == 0 {
		return nil
	}
	return &ValidationError{Fields: *o.errs}
}

// raw returns the field's JSON, treating null as absent. A missing required
// field is recorded.
func (o *Object) raw(name string, required bool) (json.RawMessage, bool) {
	value, ok := o.fields[name]
	if !ok || string(bytes.TrimSpace(value)) == "null" {
		if required {
			o.fail(name, "Field required", "missing")
		}
		return nil, false
	}
	return value, true
}

// Has tells whether the field is present and not null.
func (o *Object) Has(name string) bool {
	value, ok := o.fields[name]
	return ok && string(bytes.TrimSpace(value)) != "null"
}

// String reads a string field; required ones must be non-blank.
func (o *Object) String(name string, required bool, maxLen int) (string, bool) {
	value, ok := o.raw(name, required)
	if !ok {
		return "", false
	}
	var s string
	if err := json.Unmarshal(value, &s); err != nil {
		o.fail(name, "Input should be a valid string", "string_type")
		return "", false
	}
	s = strings.TrimSpace(s)
	if required && s == "" {
		o.fail(name, "String should have at least 1 character", "string_too_short")
		return "", false
	}
	if maxLen > 0 && len(s) > maxLen {
		o.fail(name, fmt.Sprintf("String should have at most %d characters", maxLen), "string_too_long")
		return "", false
	}
	return s, true
}

// Bool reads a boolean field.
func (o *Object) Bool(name string, required bool) (bool, bool) {
	value, ok := o.raw(name, required)
	if !ok {
		return false, false
	}
	var b bool
	if err := json.Unmarshal(value, &b); err != nil {
		o.fail(name, "Input should be a valid boolean", "bool_type")
		return false, false
	}
	return b, true
}

// Int reads an integer field that must be at least min.
func (o *Object) Int(name string, required bool, min int64) (int64, bool) {
	value, ok := o.raw(name, required)
	if !ok {
		return 0, false
	}
	var number json.Number
	if err := json.Unmarshal(value, &number); err != nil {
		o.fail(name, "Input should be a valid integer", "int_type")
		return 0, false
	}
	n, err := strconv.ParseInt(number.String(), 10, 64)
	if err != nil {
		f, ferr := strconv.ParseFloat(number.String(), 64)
		if ferr == nil && f == math.Trunc(f) && math.Abs(f) < 1<<53 {
			n = int64(f)
		} else {
			o.fail(name, "Input should be a valid integer", "int_type")
			return 0, false
		}
	}
	if n < min {
		o.fail(name, fmt.Sprintf("Input should be greater than or equal to %d", min), "greater_than_equal")
		return 0, false
	}
	if n > math.MaxInt32 {
		o.fail(name, fmt.Sprintf("Input should be less than or equal to %d", math.MaxInt32), "less_than_equal")
		return 0, false
	}
	return n, true
}

// Money reads a non-negative amount of money.
func (o *Object) Money(name string, required bool) (Money, bool) {
	value, ok := o.raw(name, required)
	if !ok {
		return 0, false
	}
	var number json.Number
	if err := json.Unmarshal(value, &number); err != nil {
		o.fail(name, "Input should be a valid number", "float_type")
		return 0, false
	}
	m, err := ParseMoney(number.String())
	if err != nil {
		o.fail(name, "Input should be a valid number: "+err.Error(), "float_type")
		return 0, false
	}
	if m < 0 {
		o.fail(name, "Input should be greater than or equal to 0", "greater_than_equal")
		return 0, false
	}
	return m, true
}

// ObjectID reads a 24-hex-character id.
func (o *Object) ObjectID(name string, required bool) (string, bool) {
	id, ok := o.String(name, required, 0)
	if !ok {
		return "", false
	}
	if !IsObjectID(id) {
		o.fail(name, "Input should be a 24-character hexadecimal id", "string_pattern_mismatch")
		return "", false
	}
	return id, true
}

// Object reads a nested JSON object.
func (o *Object) Object(name string, required bool) (*Object, bool) {
	value, ok := o.raw(name, required)
	if !ok {
		return nil, false
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(value, &fields); err != nil {
		o.fail(name, "Input should be a valid object", "model_type")
		return nil, false
	}
	return &Object{fields: fields, loc: o.at(name), errs: o.errs}, true
}

// Objects reads a non-empty array of JSON objects.
func (o *Object) Objects(name string, required bool) ([]*Object, bool) {
	value, ok := o.raw(name, required)
	if !ok {
		return nil, false
	}
	var elements []json.RawMessage
	if err := json.Unmarshal(value, &elements); err != nil {
		o.fail(name, "Input should be a valid list", "list_type")
		return nil, false
	}
	if len(elements) == 0 {
		o.fail(name, "List should have at least 1 item", "too_short")
		return nil, false
	}
	objects := make([]*Object, 0, len(elements))
	valid := true
	for i, element := range elements {
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(element, &fields); err != nil || fields == nil {
			*o.errs = append(*o.errs, FieldError{Loc: append(o.at(name), i), Msg: "Input should be a valid object", Type: "model_type"})
			valid = false
			continue
		}
		objects = append(objects, &Object{fields: fields, loc: append(o.at(name), i), errs: o.errs})
	}
	return objects, valid
}

// Query validates query-string parameters.
type Query struct {
	r    *http.Request
	errs []FieldError
}

// NewQuery starts validating r's query string.
func NewQuery(r *http.Request) *Query { return &Query{r: r} }

func (q *Query) fail(name, msg, errType string) {
	q.errs = append(q.errs, FieldError{Loc: []any{"query", name}, Msg: msg, Type: errType})
}

// Err is the collected validation error, or nil.
func (q *Query) Err() error {
	if len(q.errs) == 0 {
		return nil
	}
	return &ValidationError{Fields: q.errs}
}

// String is the parameter's value ("" when absent).
func (q *Query) String(name string) string {
	return strings.TrimSpace(q.r.URL.Query().Get(name))
}

// Int reads an integer parameter in [min, max], def when absent.
func (q *Query) Int(name string, def, min, max int64) int64 {
	s := q.String(name)
	if s == "" {
		return def
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		q.fail(name, "Input should be a valid integer", "int_parsing")
		return def
	}
	if n < min {
		q.fail(name, fmt.Sprintf("Input should be greater than or equal to %d", min), "greater_than_equal")
		return def
	}
	if n > max {
		q.fail(name, fmt.Sprintf("Input should be less than or equal to %d", max), "less_than_equal")
		return def
	}
	return n
}

// Money reads an optional non-negative amount.
func (q *Query) Money(name string) (Money, bool) {
	s := q.String(name)
	if s == "" {
		return 0, false
	}
	m, err := ParseMoney(s)
	if err != nil || m < 0 {
		q.fail(name, "Input should be a valid non-negative number", "float_parsing")
		return 0, false
	}
	return m, true
}

// Bool reads an optional boolean parameter.
func (q *Query) Bool(name string) bool {
	s := q.String(name)
	if s == "" {
		return false
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		q.fail(name, "Input should be a valid boolean", "bool_parsing")
		return false
	}
	return b
}

// StringOrInt reads a field given either as a string or as an integer, as
// text (user ids arrive both ways).
func (o *Object) StringOrInt(name string, required bool) (string, bool) {
	value, ok := o.raw(name, required)
	if !ok {
		return "", false
	}
	var s string
	if err := json.Unmarshal(value, &s); err == nil {
		s = strings.TrimSpace(s)
		if s == "" {
			o.fail(name, "String should have at least 1 character", "string_too_short")
			return "", false
		}
		return s, true
	}
	var number json.Number
	if err := json.Unmarshal(value, &number); err == nil {
		if n, err := strconv.ParseInt(number.String(), 10, 64); err == nil {
			return strconv.FormatInt(n, 10), true
		}
	}
	o.fail(name, "Input should be a valid string or integer", "string_type")
	return "", false
}

// PathObjectID reads the 24-hex-character id in the path segment name and
// returns it lower-cased; noun names the object in the 400 answer, e.g.
// "product" gives "Invalid product id ...".
func PathObjectID(r *http.Request, name, noun string) (string, error) {
	id := r.PathValue(name)
	if !IsObjectID(id) {
		return "", Errorf(http.StatusBadRequest, "Invalid %s id %q: expected a 24-character hexadecimal id", noun, id)
	}
	return strings.ToLower(id), nil
}
