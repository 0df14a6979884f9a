"""The evidence for believing a map, one module per measure, computation apart from pictures:

- perturb: removing pixels in a map's order (Chefer et al. CVPR 2021), the curves and their AUCs,
  and what removed pixels become (a colour, or ROAD's imputation: road);
- saco: the salience-guided faithfulness coefficient (Wu et al. CVPR 2024);
- mprt: the sanity check, cascading randomisation of the model's modules (Adebayo et al. 2018;
  Quantus's cascade by default);
- pointing: the share of a map's mass on the object, where the data marks it;
- measure: one photo's curves and SaCo in one call, and what ROAD and the sanity check may cost;
- table: the evidence table and the ranking under each fill, as Markdown;
- sample, evaluate, journal: the research evaluation over a data set (python -m vitviz.evaluate).

Each measure follows its reference's convention by default and names it (vitviz.core.conventions:
saco.CONVENTIONS, mprt.CONVENTIONS, road.ROAD, perturb.PROTOCOL). The pictures of these results are
vitviz.pictures.evidence's.
"""
