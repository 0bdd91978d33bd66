//! Checks across processes: ids (form and uniqueness) and the
//! `depends_on` graph (known ids, no self-dependency, no cycle).

use std::collections::{HashMap, HashSet};

use super::decode::Decoder;
use super::error::{cut, Hint, Problem};
use super::process::Draft;
use super::schema::DependencyCondition;

/// Above this many processes, an unknown `depends_on` id gets no "did you
/// mean" hint.
const MAX_HINTED_IDS: usize = 1_000;

/// Dependency cycles reported at most (each is an error of its own).
const MAX_CYCLES: usize = 100;

/// Processes named in the message of one cycle.
const MAX_CYCLE_NAMES: usize = 8;

/// `[A-Za-z0-9_-]{1,64}`: ids appear in file names, URLs and metrics.
pub(super) fn check_id(id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > 64 {
        return Err(format!("id `{}` must be 1 to 64 characters long", cut(id)));
    }
    match id
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
    {
        Some(c) => Err(format!(
            "id `{}` contains `{}`; use only letters, digits, `_` and `-`",
            cut(id),
            cut(c.encode_utf8(&mut [0; 4]))
        )),
        None => Ok(()),
    }
}

pub(super) fn processes(d: &mut Decoder<'_>, drafts: &[Draft]) {
    let index = unique_ids(d, drafts);
    let edges = dependencies(d, drafts, &index);
    cycles(d, drafts, &edges);
}

/// Reports each repeated id at its second (and later) place; returns the
/// index of the first process with each id.
fn unique_ids(d: &mut Decoder<'_>, drafts: &[Draft]) -> HashMap<String, usize> {
    let mut index: HashMap<String, usize> = HashMap::new();
    for (n, draft) in drafts.iter().enumerate() {
        let Some((pos, path)) = &draft.id_at else {
            continue;
        };
        let id = &draft.config.id;
        match index.get(id) {
            Some(&first) => {
                let line = drafts[first].id_at.as_ref().map_or(0, |(p, _)| p.line);
                let message = format!("duplicate id `{}` (first used at line {line})", cut(id));
                d.report(*pos, path, Problem::Invalid(message));
            }
            None => {
                index.insert(id.clone(), n);
            }
        }
    }
    index
}

/// Checks each `depends_on` entry; returns, for each process, the
/// processes it depends on with the index of the entry.
fn dependencies(
    d: &mut Decoder<'_>,
    drafts: &[Draft],
    index: &HashMap<String, usize>,
) -> Vec<Vec<(usize, usize)>> {
    let mut edges = vec![Vec::new(); drafts.len()];
    for (n, draft) in drafts.iter().enumerate() {
        let deps = draft.config.depends_on.iter().zip(&draft.depends_on);
        let mut listed = HashSet::new();
        for (entry, (dep, (pos, path))) in deps.enumerate() {
            let problem = |message: String| Problem::Invalid(message);
            let Some(&target) = index.get(&dep.id) else {
                // Among thousands of ids a hint costs more than it helps:
                // each unknown id would be compared with every one.
                let hint = if index.len() <= MAX_HINTED_IDS {
                    Hint::closest(&dep.id, index.keys().map(String::as_str))
                } else {
                    Hint::None
                };
                let message = format!("unknown process id `{}`{hint}", cut(&dep.id));
                d.report(*pos, path, problem(message));
                continue;
            };
            if target == n {
                d.report(
                    *pos,
                    path,
                    problem("a process cannot depend on itself".into()),
                );
                continue;
            }
            if !listed.insert(target) {
                let message = format!("`{}` is listed twice", cut(&dep.id));
                d.report(*pos, path, problem(message));
                continue;
            }
            let target_config = &drafts[target].config;
            if dep.condition == DependencyCondition::Healthy && target_config.health_check.is_none()
            {
                let message = format!(
                    "condition healthy needs a health check on `{}`, which has none",
                    cut(&dep.id)
                );
                d.report(*pos, path, problem(message));
            }
            edges[n].push((target, entry));
        }
    }
    edges
}

/// Reports each dependency cycle once, at the entry of its first process
/// (in file order) that leads into the cycle.
fn cycles(d: &mut Decoder<'_>, drafts: &[Draft], edges: &[Vec<(usize, usize)>]) {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    let mut marks = vec![Mark::New; drafts.len()];
    // Where each open process is on the stack: a cycle is cut out of the
    // stack without searching it.
    let mut at = vec![0usize; drafts.len()];
    let mut found: Vec<Vec<usize>> = Vec::new();
    let mut seen: HashSet<Vec<usize>> = HashSet::new();
    for start in 0..drafts.len() {
        if marks[start] != Mark::New {
            continue;
        }
        // An explicit stack of (node, next edge to follow): the graph is
        // user input and may be deep.
        let mut stack = vec![(start, 0usize)];
        marks[start] = Mark::Open;
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            let Some(&(target, _)) = edges[node].get(*next) else {
                marks[node] = Mark::Done;
                stack.pop();
                continue;
            };
            *next += 1;
            match marks[target] {
                Mark::New => {
                    marks[target] = Mark::Open;
                    at[target] = stack.len();
                    stack.push((target, 0));
                }
                // Past MAX_CYCLES the walk goes on (it is linear) but
                // collects no more: a hostile graph has quadratically many.
                Mark::Open if found.len() < MAX_CYCLES => {
                    let mut cycle: Vec<usize> =
                        stack[at[target]..].iter().map(|&(n, _)| n).collect();
                    // Start at the process written first, so each cycle
                    // has one name however it was reached.
                    let first = (0..cycle.len()).min_by_key(|&i| cycle[i]).unwrap_or(0);
                    cycle.rotate_left(first);
                    if seen.insert(cycle.clone()) {
                        found.push(cycle);
                    }
                }
                Mark::Open | Mark::Done => {}
            }
        }
    }
    for cycle in found {
        // A long cycle is named by its first processes and its length.
        let shown = cycle.len().min(MAX_CYCLE_NAMES);
        let mut names: Vec<_> = cycle[..shown]
            .iter()
            .map(|&n| cut(&drafts[n].config.id))
            .collect();
        if shown < cycle.len() {
            names.push(format!("... ({} processes)", cycle.len()).into());
        }
        names.push(cut(&drafts[cycle[0]].config.id));
        let (head, next) = (cycle[0], cycle.get(1).copied().unwrap_or(cycle[0]));
        let entry = edges[head]
            .iter()
            .find(|&&(t, _)| t == next)
            .map(|&(_, e)| e);
        if let Some((pos, path)) = entry.and_then(|e| drafts[head].depends_on.get(e)) {
            let message = format!("dependency cycle: {}", names.join(" -> "));
            d.report(*pos, path, Problem::Invalid(message));
        }
    }
}
