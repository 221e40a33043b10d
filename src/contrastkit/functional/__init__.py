"""Pure tensor math: every contrastive objective as a function, no state.

Like :mod:`torch.nn.functional`: no modules, no globals, no I/O. The
InfoNCE-family objectives are thin wrappers over
:func:`contrastive_loss_from_logits`.
"""

from contrastkit.functional.banzhaf import (
    banzhaf_alignment_loss,
    banzhaf_estimator_loss,
    banzhaf_interaction_exact,
    banzhaf_interaction_monte_carlo,
    hbi_banzhaf_interaction,
    hbi_loss,
    wti_coalition_value,
    wti_similarity,
)
from contrastkit.functional.biovil import (
    biovil_global_loss,
    contrast_to_noise_ratio,
    patch_phrase_similarity,
    pool_projected_patches,
    radiology_section_matching_loss,
    similarity_map_to_image,
)
from contrastkit.functional.bootstrap import negative_cosine
from contrastkit.functional.cluster_agreement import (
    cluster_agreement_loss,
    mask_slice_embeddings,
    masked_embedding_prediction_loss,
    sinkhorn_knopp,
    swapped_prediction_loss,
)
from contrastkit.functional.contrastive import (
    clip_loss,
    dcl,
    dclw,
    info_nce,
    nt_xent,
    siglip_loss,
    supcon,
    von_mises_weights,
)
from contrastkit.functional.core import contrastive_loss_from_logits
from contrastkit.functional.distillation import distillation_loss, dse_pair_features
from contrastkit.functional.dsla import dsla_loss, receptive_field_edit_counts
from contrastkit.functional.geometry import alignment, mmd, uniformity
from contrastkit.functional.graph import grace_loss, graphcl_loss
from contrastkit.functional.hierarchical import (
    grouped_nt_xent,
    hierarchical_contrastive,
)
from contrastkit.functional.joint_contrast import (
    joint_to_joint_loss,
    joint_to_nonjoint_loss,
    sample_volume_features,
)
from contrastkit.functional.kernel_contrast import (
    anatcl_loss,
    kernel_weighted_info_nce,
    rbf_kernel_weights,
)
from contrastkit.functional.mcvqa import mask_tokens, mcvqa_contrastive_loss, mcvqa_loss
from contrastkit.functional.mixing import mix_inputs, mixed_barlow_twins_regularizer
from contrastkit.functional.mmc import (
    local_to_global_distillation,
    masked_patch_l1,
    mmc_loss,
    moco_v3_contrastive,
)
from contrastkit.functional.multilevel import multi_level_contrastive
from contrastkit.functional.noiseclr import noise_differences, noiseclr_loss
from contrastkit.functional.paired import (
    CACHE_MAX_BYTES,
    default_chunk_size,
    paired_contrastive_loss,
)
from contrastkit.functional.pcl_sr import pcl_sr_contrastive
from contrastkit.functional.pot import pot_loss, pot_regularized_loss
from contrastkit.functional.pot_bounds import gcn_bounds, pot_node_compactness
from contrastkit.functional.ranking import multiple_negatives_ranking
from contrastkit.functional.recommendation import (
    bpr_loss,
    lightgcl_loss,
    mclrec_regularizer,
    simgcl_perturb,
)
from contrastkit.functional.redundancy import barlow_twins, vicreg, vicreg_terms
from contrastkit.functional.sbcl import sbcl_class_temperatures, sbcl_loss
from contrastkit.functional.sepclr import (
    align_loss,
    joint_entropy_loss,
    sepclr_loss,
    uniform_loss,
)
from contrastkit.functional.supremix import (
    label_distance_weights,
    supremix_loss,
    supremix_mixtures,
)
from contrastkit.functional.tiled import (
    DEFAULT_CHUNK_SIZE,
    NAIVE_MAX_LOGITS_BYTES,
    tiled_contrastive_loss,
    tiled_siglip_loss,
)
from contrastkit.functional.weighted_infonce import (
    game4loc_smoothing,
    weighted_info_nce,
)

__all__ = [
    "alignment",
    "barlow_twins",
    "bpr_loss",
    "CACHE_MAX_BYTES",
    "clip_loss",
    "contrastive_loss_from_logits",
    "dcl",
    "dclw",
    "default_chunk_size",
    "DEFAULT_CHUNK_SIZE",
    "distillation_loss",
    "dse_pair_features",
    "dsla_loss",
    "gcn_bounds",
    "grace_loss",
    "graphcl_loss",
    "grouped_nt_xent",
    "hierarchical_contrastive",
    "info_nce",
    "lightgcl_loss",
    "mclrec_regularizer",
    "mmd",
    "multi_level_contrastive",
    "multiple_negatives_ranking",
    "NAIVE_MAX_LOGITS_BYTES",
    "negative_cosine",
    "nt_xent",
    "paired_contrastive_loss",
    "pot_loss",
    "pot_node_compactness",
    "pot_regularized_loss",
    "receptive_field_edit_counts",
    "siglip_loss",
    "simgcl_perturb",
    "supcon",
    "tiled_contrastive_loss",
    "tiled_siglip_loss",
    "uniformity",
    "vicreg",
    "vicreg_terms",
    "von_mises_weights",
]
__all__ += [  # seed-paper components
    "align_loss",
    "anatcl_loss",
    "cluster_agreement_loss",
    "game4loc_smoothing",
    "joint_entropy_loss",
    "joint_to_joint_loss",
    "joint_to_nonjoint_loss",
    "kernel_weighted_info_nce",
    "label_distance_weights",
    "local_to_global_distillation",
    "mask_slice_embeddings",
    "masked_embedding_prediction_loss",
    "masked_patch_l1",
    "mix_inputs",
    "mixed_barlow_twins_regularizer",
    "mmc_loss",
    "moco_v3_contrastive",
    "noise_differences",
    "noiseclr_loss",
    "pcl_sr_contrastive",
    "rbf_kernel_weights",
    "sample_volume_features",
    "sbcl_class_temperatures",
    "sbcl_loss",
    "sepclr_loss",
    "sinkhorn_knopp",
    "supremix_loss",
    "supremix_mixtures",
    "swapped_prediction_loss",
    "uniform_loss",
    "weighted_info_nce",
]
__all__ += [  # seed-paper components: HBI (Banzhaf interaction), BioViL / CXR-BERT, MC video QA
    "banzhaf_alignment_loss",
    "banzhaf_estimator_loss",
    "banzhaf_interaction_exact",
    "banzhaf_interaction_monte_carlo",
    "biovil_global_loss",
    "contrast_to_noise_ratio",
    "hbi_banzhaf_interaction",
    "hbi_loss",
    "mask_tokens",
    "mcvqa_contrastive_loss",
    "mcvqa_loss",
    "patch_phrase_similarity",
    "pool_projected_patches",
    "radiology_section_matching_loss",
    "similarity_map_to_image",
    "wti_coalition_value",
    "wti_similarity",
]
