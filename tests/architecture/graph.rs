//! Cycles in the graph of top-level modules: the strongly connected components (Tarjan),
//! and one cycle through each for the message.

use std::collections::{BTreeMap, BTreeSet};

/// The strongly connected components with more than one module (Tarjan's algorithm).
pub fn strongly_connected<E>(
    nodes: &BTreeSet<String>,
    edges: &BTreeMap<String, BTreeMap<String, E>>,
) -> Vec<BTreeSet<String>> {
    struct State<'a, E> {
        edges: &'a BTreeMap<String, BTreeMap<String, E>>,
        index: BTreeMap<String, usize>,
        low: BTreeMap<String, usize>,
        stack: Vec<String>,
        on_stack: BTreeSet<String>,
        next: usize,
        out: Vec<BTreeSet<String>>,
    }
    fn visit<E>(s: &mut State<'_, E>, v: &str) {
        s.index.insert(v.to_string(), s.next);
        s.low.insert(v.to_string(), s.next);
        s.next += 1;
        s.stack.push(v.to_string());
        s.on_stack.insert(v.to_string());
        let targets: Vec<String> = s
            .edges
            .get(v)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        for w in targets {
            if !s.index.contains_key(&w) {
                visit(s, &w);
                let low = s.low[v].min(s.low[&w]);
                s.low.insert(v.to_string(), low);
            } else if s.on_stack.contains(&w) {
                let low = s.low[v].min(s.index[&w]);
                s.low.insert(v.to_string(), low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = BTreeSet::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(&w);
                let done = w == v;
                component.insert(w);
                if done {
                    break;
                }
            }
            if component.len() > 1 {
                s.out.push(component);
            }
        }
    }
    let mut s = State {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        out: Vec::new(),
    };
    for node in nodes {
        if !s.index.contains_key(node) {
            visit(&mut s, node);
        }
    }
    s.out
}

/// One cycle through a strongly connected component: a breadth-first walk back to its
/// first module.
pub fn a_cycle_in<E>(
    component: &BTreeSet<String>,
    edges: &BTreeMap<String, BTreeMap<String, E>>,
) -> Vec<String> {
    let start = component.iter().next().unwrap().clone();
    let mut previous: BTreeMap<String, String> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([start.clone()]);
    while let Some(v) = queue.pop_front() {
        for w in edges.get(&v).map(|m| m.keys()).into_iter().flatten() {
            if !component.contains(w) {
                continue;
            }
            if *w == start {
                let mut path = vec![start.clone()];
                let mut at = v.clone();
                while at != start {
                    path.push(at.clone());
                    at = previous[&at].clone();
                }
                path.push(start.clone());
                let last = path.len() - 1;
                path[1..last].reverse();
                return path;
            }
            if !previous.contains_key(w) && *w != start {
                previous.insert(w.clone(), v.clone());
                queue.push_back(w.clone());
            }
        }
    }
    component.iter().cloned().collect()
}
