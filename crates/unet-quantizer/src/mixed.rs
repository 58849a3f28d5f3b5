//! `--precision mixed`: int8 everywhere except the sharing groups that limit the output, which
//! move to int16 (16x8), chosen by measurement under an NPU cost budget.
//!
//! 1. The int8 and the int16x8 model are scored on the calibration slices whose float outputs
//!    calibration kept (output SQNR against fp32): the floor and the ceiling of what mixing can
//!    reach. The target is the ceiling minus [`TARGET_MARGIN_DB`].
//! 2. Each *unit* is probed: the model with only that unit in int16 (QUANTIZE ops at its
//!    borders) is scored the same way; its gain is the output noise power it removes. A unit is
//!    a sharing group, except that a LOGISTIC's output group and its input's group form one
//!    (an int16 LOGISTIC fed by int8 logits keeps the int8 logits' clipped range, measured worse
//!    than int8).
//! 3. Each group's cost is what moving it to int16 adds to the NPU time: from Vela's per-layer
//!    estimates of the int8 and the int16x8 model (cycles, matched by output tensor name) when
//!    Vela is available, else from its MACs (a 16x8 MAC taken to cost two int8 MACs, as on
//!    Ethos-U55). The budget is [`COST_BUDGET`] of the int8 model's total.
//! 4. Groups are added best gain per cost first, each addition measured again (gains do not
//!    simply add), until the target is reached or the next group would exceed the budget.
//!
//! 5. Whether the goal can be reached at all within the budget is measured from the other side:
//!    each unit is also probed *demoted*, the int16x8 model with only that unit in int8. A
//!    unit whose demotion alone already falls below the goal (int16x8 − [`WITHIN_DB`]) must
//!    stay int16 in any model that reaches it, as long as int8 noise from several units does
//!    not cancel. If the units that may be demoted save less than the budget requires,
//!    no mixed model within the budget reaches the goal ([`ReachBound`]); the model with all
//!    of them demoted together is scored as the check.
//!
//! Everything measured is kept in [`MixedChoice`] for the report.

use std::collections::{BTreeSet, HashMap};

use serde::Serialize;

use crate::error::QuantError;
use crate::graph::FloatGraph;
use crate::rewrite::{ParamPlan, build_quantized};
use crate::verify::output_sqnr;

/// The mixed model aims at the int16x8 model's output SQNR minus this margin (the goal is
/// "within 3 dB"; the margin keeps held-out data on the right side of it).
pub const TARGET_MARGIN_DB: f64 = 2.5;

/// "Within this many dB of the int16x8 model": the goal [`ReachBound`] tests.
pub const WITHIN_DB: f64 = 3.0;

/// Mixed precision may add at most this fraction of the int8 model's NPU cost.
pub const COST_BUDGET: f64 = 0.25;

/// Where group costs come from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupCosts {
    /// `vela <accelerator> per-layer cycles` or `MACs`.
    pub source: String,
    /// The int8 model's total in the same unit.
    pub int8_total: f64,
    /// Sharing group → what moving it to int16 adds.
    pub per_group: HashMap<usize, f64>,
}

impl GroupCosts {
    /// Costs from per-layer NPU cycles of the int8 and the int16x8 model (keyed by the tensor
    /// each layer writes): a group costs the cycles its members' producers add in int16.
    pub fn from_layer_cycles(
        plan: &ParamPlan,
        graph: &FloatGraph,
        int8: &HashMap<String, f64>,
        int16: &HashMap<String, f64>,
        source: String,
    ) -> GroupCosts {
        let sg = &graph.model.subgraphs[0];
        let mut per_group = HashMap::new();
        for (g, group) in plan.groups.iter().enumerate() {
            let added: f64 = group
                .members
                .iter()
                .map(|&t| {
                    let name = &sg.tensors[t].name;
                    int16.get(name).copied().unwrap_or(0.0) - int8.get(name).copied().unwrap_or(0.0)
                })
                .sum();
            per_group.insert(g, added.max(0.0));
        }
        GroupCosts {
            source,
            int8_total: int8.values().sum(),
            per_group,
        }
    }

    /// Costs from MACs: a group costs the MACs of the operators writing its members (a 16x8
    /// MAC counted as two int8 MACs), the int8 total is all MACs.
    pub fn from_macs(plan: &ParamPlan, graph: &FloatGraph) -> GroupCosts {
        let sg = &graph.model.subgraphs[0];
        let macs = tflite_runtime::profile::op_macs(&graph.model);
        let mut by_output: HashMap<usize, f64> = HashMap::new();
        for (op, &m) in sg.operators.iter().zip(&macs) {
            by_output.insert(op.outputs[0] as usize, m as f64);
        }
        let per_group = plan
            .groups
            .iter()
            .enumerate()
            .map(|(g, group)| {
                let m: f64 = group.members.iter().filter_map(|t| by_output.get(t)).sum();
                (g, m)
            })
            .collect();
        GroupCosts {
            source: "MACs (Vela not available; a 16x8 MAC counted as two int8 MACs)".into(),
            int8_total: macs.iter().map(|&m| m as f64).sum(),
            per_group,
        }
    }
}

/// One unit's probe.
#[derive(Debug, Clone, Serialize)]
pub struct GroupProbe {
    /// The unit's sharing groups.
    pub groups: Vec<usize>,
    /// Its tensors.
    pub tensors: Vec<String>,
    /// Output SQNR with only this group in int16.
    pub sqnr_db: Option<f64>,
    /// Output SQNR gain over int8.
    pub gain_db: f64,
    /// Output SQNR of the int16x8 model with only this unit in int8.
    pub demoted_sqnr_db: Option<f64>,
    /// What it adds to the NPU cost (unit of [`MixedChoice::cost_source`]).
    pub cost: f64,
    /// Kept in int16.
    pub chosen: bool,
}

/// One step of the greedy choice.
#[derive(Debug, Clone, Serialize)]
pub struct MixedStep {
    /// The groups added.
    pub groups: Vec<usize>,
    /// Output SQNR with every group added so far.
    pub sqnr_db: Option<f64>,
    /// Predicted added cost of every group so far, as a fraction of int8's.
    pub cost_fraction: f64,
}

/// What `mixed` measured and chose.
#[derive(Debug, Clone, Serialize)]
pub struct MixedChoice {
    /// Calibration slices scored.
    pub slices: usize,
    /// Output SQNR of the int8 model on them.
    pub int8_sqnr_db: Option<f64>,
    /// Output SQNR of the int16x8 model on them.
    pub int16x8_sqnr_db: Option<f64>,
    /// The SQNR aimed at (int16x8 − margin).
    pub target_db: f64,
    /// Where the costs come from.
    pub cost_source: String,
    /// Largest added cost allowed, as a fraction of int8's.
    pub budget_fraction: f64,
    /// Every group's probe.
    pub probes: Vec<GroupProbe>,
    /// The additions, in order.
    pub steps: Vec<MixedStep>,
    /// Whether the target was reached within the budget.
    pub reached_target: bool,
    /// The chosen model's cost as a fraction of int8's, compiled (when a compiler was given),
    /// and the steps dropped to bring it within the budget.
    pub compiled_cost_fraction: Option<f64>,
    /// Steps undone because the compiled cost exceeded the budget.
    pub steps_undone: usize,
    /// Whether any mixed model within the budget can come within [`WITHIN_DB`] of int16x8.
    pub bound: ReachBound,
}

/// What the demotion probes say about reaching int16x8 − [`WITHIN_DB`] within the budget
/// (module docs, step 5). Costs are fractions of the int8 model's.
#[derive(Debug, Clone, Serialize)]
pub struct ReachBound {
    /// The output SQNR aimed at: int16x8's minus [`WITHIN_DB`].
    pub goal_db: f64,
    /// What every unit in int16 adds (the int16x8 model, predicted from the group costs).
    pub int16x8_cost: f64,
    /// What a model must save against int16x8 to fit the budget.
    pub must_save: f64,
    /// The units whose demotion alone keeps the goal: their sharing groups.
    pub demotable: Vec<usize>,
    /// What demoting all of them saves.
    pub can_save: f64,
    /// The int16x8 model with all of them in int8 together, scored.
    pub all_demoted_sqnr_db: Option<f64>,
    /// `can_save < must_save`: no model within the budget reaches the goal.
    pub excluded: bool,
}

impl ReachBound {
    /// One line for the terminal.
    pub fn line(&self) -> String {
        let db = |v: Option<f64>| v.map_or("exact".into(), |v| format!("{v:.2} dB"));
        format!(
            "reach: within {WITHIN_DB} dB of int16x8 (>= {:.2} dB) within the budget {}: int16x8 adds {:.1} % of int8, so a model must leave units saving >= {:.1} % in int8; the {} group(s) whose int8 alone keeps the goal save {:.1} % (all of them in int8 together: {})",
            self.goal_db,
            if self.excluded {
                "is out of reach"
            } else {
                "is not excluded"
            },
            100.0 * self.int16x8_cost,
            100.0 * self.must_save,
            self.demotable.len(),
            100.0 * self.can_save,
            db(self.all_demoted_sqnr_db),
        )
    }
}

impl MixedChoice {
    /// The chosen int16 groups.
    pub fn int16_groups(&self) -> BTreeSet<usize> {
        self.probes
            .iter()
            .filter(|p| p.chosen)
            .flat_map(|p| p.groups.iter().copied())
            .collect()
    }

    /// One line for the terminal.
    pub fn line(&self) -> String {
        let db = |v: Option<f64>| v.map_or("exact".into(), |v| format!("{v:.2} dB"));
        let chosen: Vec<String> = self
            .probes
            .iter()
            .filter(|p| p.chosen)
            .map(|p| p.tensors.join("+"))
            .collect();
        format!(
            "mixed: int16 for {} of {} units [{}]; calibration output SQNR {} (int8 {}, int16x8 {}, target {:.2} dB{}); predicted added cost {:.1} % of int8 ({}){}",
            chosen.len(),
            self.probes.len(),
            chosen.join(", "),
            db(self
                .steps
                .last()
                .and_then(|s| s.sqnr_db)
                .or(self.int8_sqnr_db)),
            db(self.int8_sqnr_db),
            db(self.int16x8_sqnr_db),
            self.target_db,
            if self.reached_target {
                ""
            } else {
                ", not reached within the budget"
            },
            100.0 * self.steps.last().map_or(0.0, |s| s.cost_fraction),
            self.cost_source,
            self.compiled_cost_fraction
                .map_or(String::new(), |c| format!(
                    "; compiled: {:.1} % ({} step(s) undone to fit)",
                    100.0 * c,
                    self.steps_undone
                ))
        )
    }
}

/// Noise power relative to the signal of an output SQNR (`None`: exact).
fn noise(sqnr: Option<f64>) -> f64 {
    sqnr.map_or(0.0, |db| 10f64.powf(-db / 10.0))
}

/// The units of `plan`: sharing groups, a LOGISTIC's output group joined with its input's.
pub fn units(graph: &FloatGraph, plan: &ParamPlan) -> Vec<Vec<usize>> {
    let sg = &graph.model.subgraphs[0];
    let n = plan.groups.len();
    let mut unit_of: Vec<usize> = (0..n).collect();
    for op in &sg.operators {
        if op.op != tflite_writer::BuiltinOp::LOGISTIC {
            continue;
        }
        let (Some(x), Some(y)) = (
            op.inputs
                .first()
                .and_then(|&t| plan.params.get(&(t as usize))),
            plan.params.get(&(op.outputs[0] as usize)),
        ) else {
            continue;
        };
        let (a, b) = (unit_of[x.group], unit_of[y.group]);
        let keep = a.min(b);
        for u in &mut unit_of {
            if *u == a || *u == b {
                *u = keep;
            }
        }
    }
    let mut units: Vec<Vec<usize>> = Vec::new();
    let mut index: HashMap<usize, usize> = HashMap::new();
    for (g, &u) in unit_of.iter().enumerate() {
        let i = *index.entry(u).or_insert_with(|| {
            units.push(Vec::new());
            units.len() - 1
        });
        units[i].push(g);
    }
    units
}

/// Compiles a candidate and returns its cost as a fraction of the int8 model's (e.g. Vela's
/// estimate), to check the predicted cost.
pub type CompiledCost<'a> = &'a dyn Fn(&BTreeSet<usize>) -> Result<f64, QuantError>;

/// Chooses the int16 groups of a mixed model (see the module docs). `plan` is the int8 plan;
/// `images[i]` has the float output `float_outputs[i]`. With `compiled`, the chosen model is
/// compiled and the last steps are undone while its cost exceeds the budget.
pub fn choose(
    graph: &FloatGraph,
    plan: &ParamPlan,
    costs: &GroupCosts,
    images: &[Vec<f32>],
    float_outputs: &[Vec<f32>],
    threads: usize,
    compiled: Option<CompiledCost<'_>>,
) -> Result<MixedChoice, QuantError> {
    if float_outputs.is_empty() {
        return Err(QuantError::BadData {
            what: "calibration",
            detail: "mixed precision needs calibration slices with float outputs kept".into(),
        });
    }
    let images = &images[..float_outputs.len()];
    let score = |groups: &BTreeSet<usize>| -> Result<Option<f64>, QuantError> {
        let candidate = build_quantized(
            graph,
            &plan.with_int16_groups(groups),
            None,
            &HashMap::new(),
            "mixed precision probe",
        )?;
        output_sqnr(&candidate.model, images, float_outputs, threads)
    };
    let all: BTreeSet<usize> = (0..plan.groups.len()).collect();
    let int8_sqnr = score(&BTreeSet::new())?;
    let int16x8_sqnr = score(&all)?;
    let target = int16x8_sqnr.map_or(f64::INFINITY, |s| s - TARGET_MARGIN_DB);
    let sg = &graph.model.subgraphs[0];
    let mut probes = Vec::new();
    for unit in units(graph, plan) {
        let sqnr = score(&unit.iter().copied().collect())?;
        probes.push(GroupProbe {
            tensors: unit
                .iter()
                .flat_map(|&g| &plan.groups[g].members)
                .map(|&t| sg.tensors[t].name.clone())
                .collect(),
            sqnr_db: sqnr,
            gain_db: match (sqnr, int8_sqnr) {
                (Some(a), Some(b)) => a - b,
                (None, Some(_)) => f64::INFINITY,
                _ => 0.0,
            },
            demoted_sqnr_db: score(
                &all.difference(&unit.iter().copied().collect())
                    .copied()
                    .collect(),
            )?,
            cost: unit
                .iter()
                .map(|g| costs.per_group.get(g).copied().unwrap_or(0.0))
                .sum(),
            groups: unit,
            chosen: false,
        });
    }
    let bound = reach_bound(&probes, int16x8_sqnr, costs, &all, &score)?;
    // Best noise removed per cost first; free units first of all.
    let base_noise = noise(int8_sqnr);
    let mut order: Vec<usize> = (0..probes.len())
        .filter(|&i| noise(probes[i].sqnr_db) < base_noise)
        .collect();
    let merit = |p: &GroupProbe| (base_noise - noise(p.sqnr_db)) / p.cost.max(1e-9);
    order.sort_by(|&a, &b| merit(&probes[b]).total_cmp(&merit(&probes[a])));
    let budget = COST_BUDGET * costs.int8_total;
    let mut chosen = BTreeSet::new();
    let mut spent = 0.0;
    let mut steps: Vec<(usize, MixedStep)> = Vec::new();
    let mut current = int8_sqnr;
    let mut reached = current.is_none_or(|s| s >= target);
    for i in order {
        if reached {
            break;
        }
        let cost = probes[i].cost;
        if spent + cost > budget {
            continue;
        }
        let mut trial = chosen.clone();
        trial.extend(probes[i].groups.iter().copied());
        let sqnr = score(&trial)?;
        if noise(sqnr) >= noise(current) {
            // Measured together, it does not help: leave it out.
            continue;
        }
        chosen = trial;
        spent += cost;
        current = sqnr;
        steps.push((
            i,
            MixedStep {
                groups: probes[i].groups.clone(),
                sqnr_db: sqnr,
                cost_fraction: spent / costs.int8_total.max(1e-9),
            },
        ));
        reached = current.is_none_or(|s| s >= target);
    }
    // The prediction ignores the QUANTIZE ops between precisions: compile and undo the last
    // steps while the real cost is over the budget.
    let mut compiled_cost = None;
    let mut undone = 0;
    if let Some(compile) = compiled {
        loop {
            let groups: BTreeSet<usize> = steps
                .iter()
                .flat_map(|(_, s)| s.groups.iter().copied())
                .collect();
            let c = compile(&groups)?;
            compiled_cost = Some(c);
            if c <= 1.0 + COST_BUDGET || steps.is_empty() {
                break;
            }
            steps.pop();
            undone += 1;
        }
        if undone > 0 {
            current = steps.last().map_or(int8_sqnr, |(_, s)| s.sqnr_db);
            reached = current.is_none_or(|s| s >= target);
        }
    }
    for (i, _) in &steps {
        probes[*i].chosen = true;
    }
    Ok(MixedChoice {
        slices: float_outputs.len(),
        int8_sqnr_db: int8_sqnr,
        int16x8_sqnr_db: int16x8_sqnr,
        target_db: target,
        cost_source: costs.source.clone(),
        budget_fraction: COST_BUDGET,
        probes,
        steps: steps.into_iter().map(|(_, s)| s).collect(),
        reached_target: reached,
        compiled_cost_fraction: compiled_cost,
        steps_undone: undone,
        bound,
    })
}

/// Output SQNR of the model with the given groups in int16 (`None`: exact).
type Scorer<'a> = &'a dyn Fn(&BTreeSet<usize>) -> Result<Option<f64>, QuantError>;

/// Step 5 of the module docs, from the probes' demoted scores.
fn reach_bound(
    probes: &[GroupProbe],
    int16x8_sqnr: Option<f64>,
    costs: &GroupCosts,
    all: &BTreeSet<usize>,
    score: Scorer<'_>,
) -> Result<ReachBound, QuantError> {
    let goal_db = int16x8_sqnr.map_or(f64::INFINITY, |s| s - WITHIN_DB);
    let total = costs.int8_total.max(1e-9);
    let int16x8_cost = probes.iter().map(|p| p.cost).sum::<f64>() / total;
    let must_save = (int16x8_cost - COST_BUDGET).max(0.0);
    let keeps_goal = |p: &&GroupProbe| p.demoted_sqnr_db.is_none_or(|s| s >= goal_db);
    let demotable: Vec<usize> = probes
        .iter()
        .filter(keeps_goal)
        .flat_map(|p| p.groups.iter().copied())
        .collect();
    let can_save = probes
        .iter()
        .filter(keeps_goal)
        .map(|p| p.cost)
        .sum::<f64>()
        / total;
    let remaining: BTreeSet<usize> = all
        .difference(&demotable.iter().copied().collect())
        .copied()
        .collect();
    Ok(ReachBound {
        goal_db,
        int16x8_cost,
        must_save,
        demotable,
        can_save,
        all_demoted_sqnr_db: score(&remaining)?,
        excluded: can_save < must_save,
    })
}
