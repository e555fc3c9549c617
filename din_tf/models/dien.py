"""DIEN and its GRU ablations (DIEN repo `Model_DIN_V2_*`)."""

from keras import ops

from din_tf._argument_checks import check_choice, check_positive_int
from din_tf.api_export import din_tf_export
from din_tf.layers import AuxiliaryLoss, DINAttention, InterestGRU
from din_tf.models._original_variables import batch_norm_map, dense_map
from din_tf.models.dien_repo_base import DIENRepoModel

EVOLUTION_TYPES = ("augru", "agru", "aigru", "gru")


@din_tf_export("din_tf.models.DIEN")
class DIEN(DIENRepoModel):
    """Deep Interest Evolution Network (DIEN paper §4) and its ablations.

    Interest extractor: a TF1-style GRU over `history_eb` (paper eq. 2–5;
    `InterestGRU("gru")`, reset before the matmul as coded). Attention:
    `DINAttention("dien_fcn", "list", return_scores=True)` with `item_eb` as
    query over the extractor states (the code's MLP attention, not the paper's
    bilinear eq. 10). Interest evolution, by `gru_type`:

    | gru_type | paper | DIEN repo class (train.py name) |
    | --- | --- | --- |
    | "augru" | AUGRU, eq. 12–13 | `Model_DIN_V2_Gru_Vec_attGru` (`DIN-V2-gru-vec-attGru`); with `use_aux_loss=True`: `Model_DIN_V2_Gru_Vec_attGru_Neg` (`DIEN`) |
    | "agru" | AGRU, eq. 11 | `Model_DIN_V2_Gru_QA_attGru` (`DIN-V2-gru-qa-attGru`) |
    | "aigru" | AIGRU (a_t scales the input) | `Model_DIN_V2_Gru_att_Gru` (`DIN-V2-gru-att-gru`) |
    | "gru" | "two-layer GRU attention" | `Model_DIN_V2_Gru_Gru_att` (`DIN-V2-gru-gru-att`): a 2nd plain GRU, then attention pooling |

    The evolution output (final state, or the pooled attention for "gru")
    ends the MLP input `[uid, item_eb, history_sum, item_eb * history_sum,
    interest]` (162), Dice activations. Auxiliary loss (paper eq. 6–7, coded as
    in docs/original_code.md#auxiliary-loss): `AuxiliaryLoss` on `(gru[:, :-1], history[:, 1:],
    negative[:, 1:], mask[:, 1:])`, needing `negative_item_ids` /
    `negative_category_ids` in training batches; weight `aux_loss_weight` (1).

    Args:
        gru_type: "augru" (default), "agru", "aigru" or "gru".
        use_aux_loss: add the auxiliary loss (True: the DIEN model).
        hidden_size: GRU width (36).
        augru_gate: "as_coded" / "paper"
            (docs/original_code.md#augru-as-coded-and-as-in-the-paper).
        reset_after: False as coded; True as in the paper.
        aux_reduction: "all_cells" as coded / "valid_cells".
        other arguments: see `DIENRepoModel`.
    """

    default_activation = "dice"

    def __init__(self, n_users=None, n_items=None, n_categories=None, gru_type="augru",
                 use_aux_loss=True, hidden_size=36, augru_gate=None, reset_after=None,
                 aux_reduction=None, **kwargs):
        gru_type = gru_type.lower() if isinstance(gru_type, str) else gru_type
        check_choice("gru_type", gru_type, EVOLUTION_TYPES)
        super().__init__(n_users, n_items, n_categories, _sequence_options=dict(
            augru_gate=augru_gate, reset_after=reset_after, aux_reduction=aux_reduction),
            **kwargs)
        self.gru_type = gru_type
        self.use_aux_loss = bool(use_aux_loss)
        self.hidden_size = check_positive_int("hidden_size", hidden_size)
        sequences = self.schema.sequences
        if not sequences:
            raise ValueError("DIEN: the schema declares no behaviour sequence; DIEN evolves "
                             "interest over one (declare `sequences`).")
        if self.use_aux_loss and not any(seq.negatives for seq in sequences):
            raise ValueError("DIEN: use_aux_loss=True needs a sequence with negatives=True "
                             "in the schema (the auxiliary loss compares each next step with "
                             "a sampled negative), or use_aux_loss=False.")
        # The first sequence's layers keep the original's names and attributes.
        (self.extractor, self.attention, self.evolution,
         self.auxiliary) = self._sequence_layers(sequences[0], "")
        self.more_sequence_layers = [list(self._sequence_layers(seq, f"_{seq.name}"))
                                     for seq in sequences[1:]]
        self._build_weights()

    def _sequence_layers(self, seq, suffix):
        reset_after = self.options["reset_after"]
        extractor = InterestGRU(self.hidden_size, "gru", reset_after=reset_after,
                                name=f"gru1{suffix}")
        attention = DINAttention("dien_fcn", output_mode="list", return_scores=True,
                                 name=f"attention{suffix}")
        if self.gru_type == "gru":
            evolution = InterestGRU(self.hidden_size, "gru", reset_after=reset_after,
                                    return_state=True, name=f"gru2{suffix}")
        else:
            evolution = InterestGRU(self.hidden_size, self.gru_type,
                                    augru_gate=self.options["augru_gate"],
                                    reset_after=reset_after, return_state=True,
                                    name=f"gru2{suffix}")
        auxiliary = (AuxiliaryLoss(self.options["aux_reduction"], name=f"auxiliary{suffix}")
                     if self.use_aux_loss and seq.negatives else None)
        return extractor, attention, evolution, auxiliary

    @property
    def uses_aux_loss(self):
        return self.use_aux_loss

    def sequence_features(self, index, seq, inputs, outputs, lookups, training, with_aux):
        extractor, attention, evolution, auxiliary = (
            (self.extractor, self.attention, self.evolution, self.auxiliary) if index == 0
            else self.more_sequence_layers[index - 1])
        mask, lengths = inputs.mask, inputs.lengths
        states = extractor(outputs["history_eb"], lengths=lengths)
        outputs["rnn1_outputs"] = states
        if self.gru_type == "gru":
            second, final = evolution(states, lengths=lengths)
            attended, alphas = attention(outputs["item_eb"], second, mask=mask)
            interest = ops.sum(attended, axis=1)
        else:
            attended, alphas = attention(outputs["item_eb"], states, mask=mask)
            second, final = evolution(states, attention=alphas, lengths=lengths)
            interest = final
        outputs.update(attention_output=attended, attention_weights=alphas,
                       rnn2_outputs=second, rnn2_final_state=final)
        if with_aux and auxiliary is not None and inputs.negatives is not None:
            negative = self.embed_steps(seq, inputs.negatives, mask, lookups)
            outputs["negative_eb"] = negative
            outputs["aux_loss"] = auxiliary(
                states[:, :-1], outputs["history_eb"][:, 1:], negative[:, 1:],
                mask=mask[:, 1:], training=training)
        item, history = outputs["item_eb"], outputs["history_sum"]
        return [item * history, interest]

    def original_variable_map(self):
        mapping = super().original_variable_map()
        mapping.update(_gru_map("gru1/gru_cell", self.extractor.cell))
        plain_second = self.gru_type in ("gru", "aigru")  # TF1 GRUCell adds a level
        mapping.update(_gru_map("gru2/gru_cell" if plain_second else "gru2",
                                self.evolution.cell))
        mapping.update(dense_map("f11_1", self.attention.query_dense))
        mapping["prelu_"] = self.attention.query_prelu.alpha
        for i, dense in enumerate(self.attention.score_layers, start=1):
            mapping.update(dense_map(f"f{i}_att1_1", dense))
        if self.auxiliary is not None:
            net = self.auxiliary.network
            mapping.update(batch_norm_map("bn1gru", net.batch_norm))
            for i, dense in enumerate(net.dense_layers, start=1):
                mapping.update(dense_map(f"f{i}gru", dense))
        return mapping

    def get_config(self):
        config = super().get_config()
        config.update(gru_type=self.gru_type, use_aux_loss=self.use_aux_loss,
                      hidden_size=self.hidden_size,
                      augru_gate=self.options["augru_gate"],
                      reset_after=self.options["reset_after"],
                      aux_reduction=self.options["aux_reduction"])
        return config


def _gru_map(prefix, cell):
    return {
        f"{prefix}/gates/kernel": cell.gates_kernel,
        f"{prefix}/gates/bias": cell.gates_bias,
        f"{prefix}/candidate/kernel": cell.candidate_kernel,
        f"{prefix}/candidate/bias": cell.candidate_bias,
    }
