"""The evidence for believing a map, one module per measure, computation apart from pictures:

- perturb: removing pixels in a map's order (Chefer et al. CVPR 2021), the curves and their AUCs,
  and what removed pixels become (a colour, or ROAD's imputation: road);
- saco: salience-guided faithfulness (Wu et al. CVPR 2024);
- mprt: the sanity check, cascading randomisation of the model's blocks (Adebayo et al. 2018);
- pointing: the share of a map's mass on the object, where the data marks it;
- measure: one photo's curves and SaCo in one call, and what ROAD and the sanity check may cost;
- table: the evidence table and the ranking under each fill, as Markdown;
- sample, evaluate, journal: the research evaluation over a data set (python -m vitviz.evaluate).

The pictures of these results are vitviz.pictures.evidence's.
"""
