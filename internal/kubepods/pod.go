// Package kubepods lists and watches the pods of one node (or any field and
// label selection) on the Kubernetes API server with nothing but net/http and
// encoding/json. It decodes only the pod fields that Prometheus-style pod
// discovery uses, which keeps k8s.io/client-go and its type registry out of
// weft's binary.
package kubepods

import "encoding/json"

// Pod is the part of a core/v1 Pod that pod discovery reads.
type Pod struct {
	// Metadata is the pod's object metadata.
	Metadata ObjectMeta `json:"metadata"`
	// Spec is the part of the pod spec discovery reads.
	Spec PodSpec `json:"spec"`
	// Status is the part of the pod status discovery reads.
	Status PodStatus `json:"status"`
}

// Key is the pod's namespace/name.
func (p *Pod) Key() string { return p.Metadata.Namespace + "/" + p.Metadata.Name }

// ObjectMeta is the part of metav1.ObjectMeta discovery reads.
type ObjectMeta struct {
	Name            string            `json:"name"`
	Namespace       string            `json:"namespace"`
	UID             string            `json:"uid"`
	ResourceVersion string            `json:"resourceVersion"`
	Labels          map[string]string `json:"labels"`
	Annotations     map[string]string `json:"annotations"`
	OwnerReferences []OwnerReference  `json:"ownerReferences"`
}

// OwnerReference names an owner of the pod.
type OwnerReference struct {
	Kind       string `json:"kind"`
	Name       string `json:"name"`
	Controller *bool  `json:"controller"`
}

// Controller returns the owner reference marked as the pod's controller,
// or nil.
func (m *ObjectMeta) Controller() *OwnerReference {
	for i := range m.OwnerReferences {
		if c := m.OwnerReferences[i].Controller; c != nil && *c {
			return &m.OwnerReferences[i]
		}
	}
	return nil
}

// PodSpec is the part of core/v1 PodSpec discovery reads.
type PodSpec struct {
	NodeName       string      `json:"nodeName"`
	Containers     []Container `json:"containers"`
	InitContainers []Container `json:"initContainers"`
}

// Container is the part of core/v1 Container discovery reads.
type Container struct {
	Name  string          `json:"name"`
	Image string          `json:"image"`
	Ports []ContainerPort `json:"ports"`
}

// ContainerPort is a declared container port.
type ContainerPort struct {
	Name          string `json:"name"`
	ContainerPort int32  `json:"containerPort"`
	Protocol      string `json:"protocol"`
}

// PodStatus is the part of core/v1 PodStatus discovery reads.
type PodStatus struct {
	Phase                 string            `json:"phase"`
	PodIP                 string            `json:"podIP"`
	HostIP                string            `json:"hostIP"`
	Conditions            []PodCondition    `json:"conditions"`
	ContainerStatuses     []ContainerStatus `json:"containerStatuses"`
	InitContainerStatuses []ContainerStatus `json:"initContainerStatuses"`
}

// PodCondition is one entry of status.conditions.
type PodCondition struct {
	Type   string `json:"type"`
	Status string `json:"status"`
}

// ContainerStatus is the part of core/v1 ContainerStatus discovery reads.
type ContainerStatus struct {
	Name        string `json:"name"`
	ContainerID string `json:"containerID"`
}

// podList is a PodList page.
type podList struct {
	Metadata listMeta `json:"metadata"`
	Items    []*Pod   `json:"items"`
}

type listMeta struct {
	ResourceVersion string `json:"resourceVersion"`
	Continue        string `json:"continue"`
}

// watchEvent is one line of a watch stream. The object is decoded once the
// type says what it is: a pod, or a Status for ERROR (whose "status" is a
// string, so one struct cannot hold both).
type watchEvent struct {
	Type   string          `json:"type"`
	Object json.RawMessage `json:"object"`
}

// status is a metav1.Status returned with a failed request.
type status struct {
	Kind    string `json:"kind"`
	Code    int    `json:"code"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
}
