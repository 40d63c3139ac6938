//! The stage DAG: construction from a pipeline, cycle detection that names the cycle,
//! topological order, subgraph selection (`--only`), and DOT / Mermaid rendering.

use crate::spec::Pipeline;
use petgraph::algo::toposort;
use petgraph::stable_graph::{NodeIndex, StableDiGraph};
use std::collections::{BTreeSet, HashMap};

/// The DAG of a pipeline: an edge `a → b` means `b` needs `a`.
pub struct Dag {
    graph: StableDiGraph<String, ()>,
    index: HashMap<String, NodeIndex>,
}

impl Dag {
    /// Builds the DAG of a validated pipeline.
    pub fn new(p: &Pipeline) -> Dag {
        let mut graph = StableDiGraph::new();
        let mut index = HashMap::new();
        for s in &p.stages {
            index.insert(s.name.clone(), graph.add_node(s.name.clone()));
        }
        for s in &p.stages {
            for n in &s.needs {
                if let (Some(&a), Some(&b)) = (index.get(n), index.get(&s.name)) {
                    graph.add_edge(a, b, ());
                }
            }
        }
        Dag { graph, index }
    }

    /// Stage names in a topological order (file order breaks ties).
    pub fn order(&self) -> Vec<String> {
        // Kahn's algorithm over node indices in insertion (= file) order, so the order is stable.
        let mut indeg: HashMap<NodeIndex, usize> = self
            .graph
            .node_indices()
            .map(|n| {
                (
                    n,
                    self.graph.neighbors_directed(n, petgraph::Incoming).count(),
                )
            })
            .collect();
        let mut ready: BTreeSet<NodeIndex> = indeg
            .iter()
            .filter(|(_, d)| **d == 0)
            .map(|(n, _)| *n)
            .collect();
        let mut out = Vec::new();
        while let Some(n) = ready.pop_first() {
            out.push(self.graph[n].clone());
            for m in self.graph.neighbors_directed(n, petgraph::Outgoing) {
                if let Some(d) = indeg.get_mut(&m) {
                    *d -= 1;
                    if *d == 0 {
                        ready.insert(m);
                    }
                }
            }
        }
        out
    }

    /// `names` and everything they (transitively) need.
    pub fn with_ancestors(&self, names: &[String]) -> BTreeSet<String> {
        self.closure(names, petgraph::Incoming)
    }

    /// `names` and everything that (transitively) needs them.
    pub fn with_descendants(&self, names: &[String]) -> BTreeSet<String> {
        self.closure(names, petgraph::Outgoing)
    }

    fn closure(&self, names: &[String], dir: petgraph::Direction) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<NodeIndex> = names
            .iter()
            .filter_map(|n| self.index.get(n).copied())
            .collect();
        while let Some(n) = stack.pop() {
            if seen.insert(self.graph[n].clone()) {
                stack.extend(self.graph.neighbors_directed(n, dir));
            }
        }
        seen
    }

    /// Graphviz DOT text.
    pub fn to_dot(&self, p: &Pipeline) -> String {
        let mut s = format!(
            "digraph \"{}\" {{\n  rankdir=LR;\n  node [shape=box, fontname=\"Helvetica\"];\n",
            p.name
        );
        for st in &p.stages {
            s.push_str(&format!(
                "  \"{}\" [label=\"{}\\n({})\"];\n",
                st.name, st.name, st.kind
            ));
        }
        for e in self.graph.edge_indices() {
            if let Some((a, b)) = self.graph.edge_endpoints(e) {
                s.push_str(&format!(
                    "  \"{}\" -> \"{}\";\n",
                    self.graph[a], self.graph[b]
                ));
            }
        }
        s.push_str("}\n");
        s
    }

    /// Mermaid flowchart text.
    pub fn to_mermaid(&self, p: &Pipeline) -> String {
        let id = |n: &str| n.replace(|c: char| !c.is_alphanumeric(), "_");
        let mut s = String::from("flowchart LR\n");
        for st in &p.stages {
            s.push_str(&format!(
                "  {}[\"{}<br/>({})\"]\n",
                id(&st.name),
                st.name,
                st.kind
            ));
        }
        for e in self.graph.edge_indices() {
            if let Some((a, b)) = self.graph.edge_endpoints(e) {
                s.push_str(&format!(
                    "  {} --> {}\n",
                    id(&self.graph[a]),
                    id(&self.graph[b])
                ));
            }
        }
        s
    }
}

/// `Err(cycle)` with the stage names along one cycle, first name repeated at the end.
///
/// The cycle starts at the stage declared first among those on it and is a shortest one
/// through that stage; finding it is linear in the size of the graph, however long it is.
pub fn find_cycle(p: &Pipeline) -> Result<(), Vec<String>> {
    let dag = Dag::new(p);
    let Err(c) = toposort(&dag.graph, None) else {
        return Ok(());
    };
    let on_cycle = c.node_id();
    let scc: BTreeSet<NodeIndex> = petgraph::algo::tarjan_scc(&dag.graph)
        .into_iter()
        .find(|scc| scc.contains(&on_cycle))
        .map(|scc| scc.into_iter().collect())
        .unwrap_or_default();
    let start = scc.first().copied().unwrap_or(on_cycle);
    // Breadth first from `start` along `needs` edges inside its component, back to `start`.
    let mut parent: HashMap<NodeIndex, NodeIndex> = HashMap::new();
    let mut queue = std::collections::VecDeque::from([start]);
    while let Some(u) = queue.pop_front() {
        for v in dag.graph.neighbors_directed(u, petgraph::Outgoing) {
            if v == start {
                let mut back = vec![u];
                while let Some(&w) = back.last().and_then(|x| parent.get(x)) {
                    back.push(w);
                }
                let mut names = vec![dag.graph[start].clone()];
                names.extend(
                    back.iter()
                        .rev()
                        .filter(|n| **n != start)
                        .map(|n| dag.graph[*n].clone()),
                );
                names.push(dag.graph[start].clone());
                return Err(names);
            }
            if scc.contains(&v) && !parent.contains_key(&v) {
                parent.insert(v, u);
                queue.push_back(v);
            }
        }
    }
    Err(vec![dag.graph[start].clone(), dag.graph[start].clone()])
}
