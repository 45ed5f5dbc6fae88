package stage

// What a cluster of nodes needs of this node's media plane
// (internal/cluster): which stages live here and how much media they
// carry (for placement and lease renewal), and letting a stage go when
// another node has taken it.

// Load is what this node's live stages carry.
type Load struct {
	// Stages are the ARNs of the live stages (in a session or its grace
	// period).
	Stages []string
	// Publishers are the publishing connections, Subscribers the
	// subscriptions (one per subscriber and publisher).
	Publishers, Subscribers int
}

// Load counts this node's live stages and their media connections.
func (m *Manager) Load() Load {
	m.mu.Lock()
	stages := make([]*Stage, 0, len(m.stages))
	for _, st := range m.stages {
		stages = append(stages, st)
	}
	m.mu.Unlock()
	var l Load
	for _, st := range stages {
		st.mu.Lock()
		if !st.ended {
			l.Stages = append(l.Stages, st.arn)
			for _, p := range st.participants {
				if p.publisher != nil {
					l.Publishers++
				}
				l.Subscribers += len(p.subs)
			}
		}
		st.mu.Unlock()
	}
	return l
}

// Evict lets a live stage go: everyone is disconnected (as when the server
// stops: clients reconnect, and find the stage on the node that holds it
// now) and this node's session ends.
func (m *Manager) Evict(stageARN, reason string) {
	if st := m.lookupStage(stageARN); st != nil {
		st.disconnectAll("INTERNAL", reason)
	}
}
