package kube

import "encoding/json"

// ObjectMeta is the part of metav1.ObjectMeta weft reads.
type ObjectMeta struct {
	Name            string            `json:"name"`
	Namespace       string            `json:"namespace"`
	UID             string            `json:"uid"`
	ResourceVersion string            `json:"resourceVersion"`
	Labels          map[string]string `json:"labels"`
	Annotations     map[string]string `json:"annotations"`
	OwnerReferences []OwnerReference  `json:"ownerReferences"`
}

// OwnerReference names an owner of the object.
type OwnerReference struct {
	Kind       string `json:"kind"`
	Name       string `json:"name"`
	Controller *bool  `json:"controller"`
}

// Controller returns the owner reference marked as the object's
// controller, or nil.
func (m *ObjectMeta) Controller() *OwnerReference {
	for i := range m.OwnerReferences {
		if c := m.OwnerReferences[i].Controller; c != nil && *c {
			return &m.OwnerReferences[i]
		}
	}
	return nil
}

// key is the object's namespace/name, its identity in a collection.
func (m *ObjectMeta) key() string { return m.Namespace + "/" + m.Name }

// listPage is one page of a list of T.
type listPage[T any] struct {
	Metadata listMeta `json:"metadata"`
	Items    []*T     `json:"items"`
}

type listMeta struct {
	ResourceVersion string `json:"resourceVersion"`
	Continue        string `json:"continue"`
}

// watchEvent is one line of a watch stream. The object is decoded once the
// type says what it is: an object, a bookmark, or a Status for ERROR (whose
// "status" is a string, so one struct cannot hold both).
type watchEvent struct {
	Type   string          `json:"type"`
	Object json.RawMessage `json:"object"`
}

// bookmark is the part of a BOOKMARK event's object the reflector reads.
type bookmark struct {
	Metadata struct {
		ResourceVersion string `json:"resourceVersion"`
	} `json:"metadata"`
}

// status is a metav1.Status returned with a failed request or in an ERROR
// event.
type status struct {
	Kind    string `json:"kind"`
	Code    int    `json:"code"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
}
