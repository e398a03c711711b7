//! The round's leaderboard: each answer's mean place over the reviews that
//! could be read, best first. A reviewer never ranks its own answer, so no
//! self-vote can exist to discount.

/// One model's place on the leaderboard.
#[derive(Clone, Debug, PartialEq)]
pub struct Standing {
    pub model: String,
    /// Mean 1-based place over the rankings that name it.
    pub average_rank: f64,
    /// How many rankings name it.
    pub votes: u32,
    /// 1-based place on the leaderboard.
    pub place: u32,
}

/// Ranks the models named in `rankings` (each model ids, best first) by
/// mean place, then by more votes; a tie beyond that keeps the order of
/// `order` (the reviewed round's answers), then the model id.
pub fn leaderboard<'a>(
    rankings: impl IntoIterator<Item = &'a [String]>,
    order: &[String],
) -> Vec<Standing> {
    let mut sums: Vec<(String, u64, u32)> = Vec::new();
    for ranking in rankings {
        for (i, model) in ranking.iter().enumerate() {
            let place = u64::try_from(i + 1).unwrap_or(u64::MAX);
            match sums.iter_mut().find(|(m, _, _)| m == model) {
                Some((_, sum, votes)) => {
                    *sum += place;
                    *votes += 1;
                }
                None => sums.push((model.clone(), place, 1)),
            }
        }
    }
    let position = |model: &str| order.iter().position(|m| m == model).unwrap_or(usize::MAX);
    let mut standings: Vec<Standing> = sums
        .into_iter()
        .map(|(model, sum, votes)| Standing {
            average_rank: sum as f64 / f64::from(votes),
            model,
            votes,
            place: 0,
        })
        .collect();
    standings.sort_by(|a, b| {
        a.average_rank
            .total_cmp(&b.average_rank)
            .then(b.votes.cmp(&a.votes))
            .then(position(&a.model).cmp(&position(&b.model)))
            .then(a.model.cmp(&b.model))
    });
    for (i, s) in standings.iter_mut().enumerate() {
        s.place = u32::try_from(i + 1).unwrap_or(u32::MAX);
    }
    standings
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn mean_rank_best_first() {
        // a ranks b,c; b ranks a,c; c ranks b,a.
        let rankings = [ids(&["b", "c"]), ids(&["a", "c"]), ids(&["b", "a"])];
        let board = leaderboard(rankings.iter().map(Vec::as_slice), &ids(&["a", "b", "c"]));
        let summary: Vec<(&str, f64, u32, u32)> = board
            .iter()
            .map(|s| (s.model.as_str(), s.average_rank, s.votes, s.place))
            .collect();
        assert_eq!(
            summary,
            [("b", 1.0, 2, 1), ("a", 1.5, 2, 2), ("c", 2.0, 2, 3)]
        );
    }

    #[test]
    fn ties_go_to_more_votes_then_round_order() {
        let rankings = [ids(&["c", "b"]), ids(&["b"]), ids(&["a"])];
        let board = leaderboard(rankings.iter().map(Vec::as_slice), &ids(&["a", "b", "c"]));
        let order: Vec<&str> = board.iter().map(|s| s.model.as_str()).collect();
        // b: 1.5 over 2; a: 1.0 over 1; c: 1.0 over 1 -> a before c by round order.
        assert_eq!(order, ["a", "c", "b"]);
    }

    #[test]
    fn no_rankings_no_leaderboard() {
        let none: [Vec<String>; 0] = [];
        assert!(leaderboard(none.iter().map(Vec::as_slice), &[]).is_empty());
    }
}
