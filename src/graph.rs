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
pub fn find_cycle(p: &Pipeline) -> Result<(), Vec<String>> {
    let dag = Dag::new(p);
    let Err(c) = toposort(&dag.graph, None) else {
        return Ok(());
    };
    // Walk backwards along `needs` from a node on a cycle until a node repeats.
    let start = c.node_id();
    let mut path = vec![start];
    let mut cur = start;
    loop {
        let next = dag
            .graph
            .neighbors_directed(cur, petgraph::Outgoing)
            .find(|n| petgraph::algo::has_path_connecting(&dag.graph, *n, start, None));
        let Some(next) = next else { break };
        if let Some(pos) = path.iter().position(|x| *x == next) {
            // Start the cycle at the stage declared first in the file.
            let mut cycle: Vec<NodeIndex> = path[pos..].to_vec();
            let first = (0..cycle.len())
                .min_by_key(|i| cycle[*i].index())
                .unwrap_or(0);
            cycle.rotate_left(first);
            let mut names: Vec<String> = cycle.iter().map(|n| dag.graph[*n].clone()).collect();
            names.push(names[0].clone());
            return Err(names);
        }
        path.push(next);
        cur = next;
    }
    Err(vec![dag.graph[start].clone(), dag.graph[start].clone()])
}
