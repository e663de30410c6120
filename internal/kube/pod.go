package kube

// Pod is the part of a core/v1 Pod that Prometheus-style pod discovery
// reads; the other fields are skipped when decoding.
type Pod struct {
	// Metadata is the pod's object metadata.
	Metadata ObjectMeta `json:"metadata"`
	// Spec is the part of the pod spec discovery reads.
	Spec PodSpec `json:"spec"`
	// Status is the part of the pod status discovery reads.
	Status PodStatus `json:"status"`
}

// Meta is the pod's metadata; (*Pod).Meta is a ListWatch[Pod]'s Meta.
func (p *Pod) Meta() *ObjectMeta { return &p.Metadata }

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
