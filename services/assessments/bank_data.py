"""The NEET biology facts the question bank is written from: (term, kind, description, base difficulty)."""

from __future__ import annotations

from typing import Any

Fact = tuple[str, str, str, int]

FACTS: dict[str, list[Fact]] = {
    "cell-biology": [
        ("Mitochondrion", "organelle", "the site of the Krebs cycle and oxidative phosphorylation", 1),
        ("Ribosome", "organelle", "the site of protein synthesis, made of rRNA and protein", 1),
        ("Golgi apparatus", "organelle", "where proteins are modified, packaged and glycosylated for secretion", 2),
        ("Lysosome", "organelle", "a membrane-bound sac of acid hydrolases for intracellular digestion", 2),
        ("Smooth endoplasmic reticulum", "organelle", "the main site of lipid and steroid synthesis", 2),
        ("Centriole", "organelle", "a cylinder of nine triplet microtubules that organises the spindle", 3),
        ("Nucleolus", "structure", "the site of ribosomal RNA synthesis inside the nucleus", 2),
        ("Peroxisome", "organelle", "the organelle that breaks down hydrogen peroxide with catalase", 3),
        ("Glyoxysome", "organelle", "converts stored fats to sugars in germinating oil seeds", 4),
        ("Plasmodesmata", "structure", "cytoplasmic channels that connect adjacent plant cells", 3),
        ("Zygotene", "stage", "the stage of prophase I in which homologous chromosomes begin to synapse", 4),
        ("Pachytene", "stage", "the stage of prophase I in which crossing over occurs", 4),
        ("Anaphase", "stage", "the phase of mitosis in which sister chromatids move to opposite poles", 2),
    ],
    "genetics": [
        (
            "Law of segregation",
            "principle",
            "the principle that the two alleles of a gene separate during gamete formation",
            1,
        ),
        ("Incomplete dominance", "pattern", "inheritance giving a pink F1 from red and white snapdragon parents", 2),
        ("Codominance", "pattern", "inheritance in which both alleles are fully expressed, as in AB blood group", 2),
        ("Test cross", "method", "a cross with the homozygous recessive parent to find an unknown genotype", 1),
        ("Pleiotropy", "phenomenon", "one gene affecting several traits, as in phenylketonuria", 3),
        ("Polygenic inheritance", "pattern", "a trait controlled by several genes, such as human skin colour", 2),
        ("Linkage", "phenomenon", "genes on the same chromosome tending to be inherited together", 2),
        ("Down syndrome", "disorder", "a disorder caused by trisomy of chromosome 21", 1),
        ("Turner syndrome", "disorder", "a disorder with the karyotype 45,X0", 2),
        ("Klinefelter syndrome", "disorder", "a disorder with the karyotype 47,XXY", 2),
        ("Haemophilia", "disorder", "an X-linked recessive disorder in which blood fails to clot", 2),
        (
            "Sickle-cell anaemia",
            "disorder",
            "an autosomal recessive disorder caused by glutamic acid replaced by valine",
            3,
        ),
        ("Lac operon", "system", "an inducible operon switched on when lactose binds the repressor", 4),
    ],
    "human-physiology": [
        ("Insulin", "hormone", "the hormone from beta cells that lowers blood glucose", 1),
        ("Glucagon", "hormone", "the hormone from alpha cells that raises blood glucose", 1),
        ("Antidiuretic hormone", "hormone", "the hormone that increases water reabsorption in the collecting duct", 2),
        ("Aldosterone", "hormone", "the hormone that increases sodium reabsorption in the distal tubule", 3),
        ("Sino-atrial node", "structure", "the pacemaker of the heart", 1),
        ("Bundle of His", "structure", "conducting tissue that carries impulses from the AV node to the ventricles", 3),
        ("Loop of Henle", "structure", "the part of the nephron that creates a medullary concentration gradient", 3),
        ("Surfactant", "substance", "a lipoprotein that lowers surface tension in the alveoli", 3),
        ("Pepsin", "enzyme", "the stomach enzyme that digests proteins in acidic conditions", 1),
        ("Trypsin", "enzyme", "a pancreatic protease activated by enterokinase", 2),
        ("Sarcomere", "structure", "the functional contractile unit of a myofibril between two Z lines", 2),
        ("Acetylcholine", "neurotransmitter", "the neurotransmitter released at the neuromuscular junction", 2),
        ("Erythropoietin", "hormone", "the hormone from the kidney that stimulates red blood cell formation", 3),
    ],
    "plant-physiology": [
        ("RuBisCO", "enzyme", "the enzyme that fixes carbon dioxide in the Calvin cycle", 1),
        ("Photosystem II", "complex", "the photosystem that splits water and releases oxygen", 2),
        ("C4 pathway", "pathway", "carbon fixation in mesophyll cells by PEP carboxylase, with Kranz anatomy", 3),
        ("Photorespiration", "process", "oxygenation of RuBP that wastes fixed carbon in C3 plants", 3),
        ("Auxin", "hormone", "the plant hormone that causes apical dominance and phototropism", 1),
        ("Gibberellin", "hormone", "the plant hormone that causes bolting and stem elongation", 2),
        ("Cytokinin", "hormone", "the plant hormone that promotes cell division and delays senescence", 2),
        ("Abscisic acid", "hormone", "the stress hormone that closes stomata and induces dormancy", 2),
        ("Ethylene", "hormone", "the gaseous hormone that ripens fruit", 1),
        ("Transpiration pull", "mechanism", "the cohesion-tension force that lifts water through the xylem", 2),
        ("Phytochrome", "pigment", "the pigment that senses red and far-red light to control flowering", 4),
        ("Nitrogenase", "enzyme", "the enzyme of root nodules that reduces nitrogen to ammonia", 3),
    ],
    "ecology": [
        ("Primary succession", "process", "community development on bare rock where no soil existed", 2),
        ("Pyramid of energy", "pyramid", "an ecological pyramid that is always upright", 1),
        ("Ten percent law", "principle", "the rule that about 10% of energy passes to the next trophic level", 1),
        ("Mutualism", "interaction", "an interaction in which both species benefit, as in lichens", 1),
        ("Commensalism", "interaction", "an interaction in which one species benefits and the other is unaffected", 2),
        ("Amensalism", "interaction", "an interaction in which one species is harmed and the other unaffected", 3),
        ("Biomagnification", "process", "the rising concentration of a toxin such as DDT up a food chain", 2),
        ("Eutrophication", "process", "nutrient enrichment of a lake causing algal blooms", 2),
        ("Ex situ conservation", "strategy", "protecting species outside their habitat, as in seed banks", 2),
        ("Biodiversity hotspot", "region", "a region of high endemism that has lost most of its original habitat", 3),
        ("Gross primary productivity", "measure", "the total rate of organic matter made by photosynthesis", 3),
        ("Detritivore", "organism", "an organism such as an earthworm that breaks down detritus", 1),
    ],
    "biotechnology": [
        ("EcoRI", "enzyme", "a restriction endonuclease that cuts between G and A in GAATTC", 2),
        ("DNA ligase", "enzyme", "the enzyme that joins DNA fragments", 1),
        ("Taq polymerase", "enzyme", "a heat-stable DNA polymerase used in PCR", 1),
        ("pBR322", "vector", "a cloning vector carrying ampicillin and tetracycline resistance genes", 3),
        (
            "Agrobacterium tumefaciens",
            "organism",
            "a bacterium whose Ti plasmid is used to transfer genes into plants",
            2,
        ),
        ("Gel electrophoresis", "technique", "the technique that separates DNA fragments by size", 1),
        ("Insertional inactivation", "method", "selection of recombinants by loss of beta-galactosidase colour", 4),
        ("Bt toxin", "protein", "a crystal protein of Bacillus thuringiensis toxic to insect larvae", 2),
        ("RNA interference", "technique", "silencing a gene with double-stranded RNA, used against nematodes", 3),
        ("ELISA", "technique", "an antigen-antibody test used for early diagnosis of HIV", 2),
        ("Biolistics", "method", "delivering DNA into plant cells with gold or tungsten particles", 3),
        ("Bioreactor", "equipment", "a vessel for growing microbes or cells at large scale", 1),
    ],
    "reproduction": [
        (
            "Double fertilisation",
            "process",
            "fusion of one male gamete with the egg and another with the polar nuclei",
            2,
        ),
        ("Tapetum", "tissue", "the anther wall layer that nourishes developing pollen", 2),
        ("Apomixis", "process", "formation of seeds without fertilisation", 3),
        ("Polyembryony", "phenomenon", "the occurrence of more than one embryo in a seed, as in citrus", 3),
        ("Sertoli cells", "cells", "cells of the seminiferous tubules that nourish developing sperm", 2),
        ("Leydig cells", "cells", "interstitial cells that secrete testosterone", 2),
        ("Corpus luteum", "structure", "the structure that secretes progesterone after ovulation", 2),
        ("Luteinising hormone surge", "event", "the mid-cycle hormone peak that triggers ovulation", 2),
        ("Acrosome", "structure", "the cap of the sperm head holding enzymes to penetrate the ovum", 1),
        ("Implantation", "process", "attachment of the blastocyst to the endometrium", 1),
        ("Human chorionic gonadotropin", "hormone", "the hormone detected by pregnancy tests", 2),
        ("Perisperm", "tissue", "persistent nucellus in seeds such as black pepper", 4),
    ],
    "evolution": [
        (
            "Homologous organs",
            "evidence",
            "organs of common origin but different function, showing divergent evolution",
            2,
        ),
        (
            "Analogous organs",
            "evidence",
            "organs of different origin but similar function, showing convergent evolution",
            2,
        ),
        ("Industrial melanism", "example", "the rise of dark peppered moths in polluted England", 2),
        ("Adaptive radiation", "process", "evolution of many forms from one ancestor, as in Darwin's finches", 2),
        ("Genetic drift", "mechanism", "random change in allele frequency in a small population", 3),
        ("Founder effect", "mechanism", "allele frequencies shifted because a new population started from a few", 3),
        ("Hardy-Weinberg equilibrium", "principle", "constant allele frequencies without evolutionary forces", 3),
        (
            "Miller's experiment",
            "experiment",
            "the experiment that made amino acids from CH4, NH3, H2 and water vapour",
            2,
        ),
        ("Stabilising selection", "selection", "selection that favours the average phenotype", 3),
        ("Directional selection", "selection", "selection that shifts the mean phenotype in one direction", 3),
        ("Homo habilis", "species", "the first human species known to make stone tools", 2),
        ("Saltation", "idea", "de Vries's idea of large single-step mutations causing speciation", 4),
    ],
}

# Free-text questions for the embedded demo: stem, rubric points, difficulty.
FREE_TEXT: dict[str, list[tuple[str, list[dict[str, Any]], int]]] = {
    "cell-biology": [
        (
            "Explain why mitochondria are called the powerhouse of the cell.",
            [
                {"point": "make ATP", "keywords": ["atp", "adenosine triphosphate", "energy currency"]},
                {"point": "aerobic respiration", "keywords": ["aerobic respiration", "krebs", "oxidative"]},
                {"point": "electron transport", "keywords": ["electron transport", "cristae"]},
            ],
            2,
        )
    ],
    "genetics": [
        (
            "Describe how a test cross reveals an unknown genotype.",
            [
                {"point": "cross with homozygous recessive", "keywords": ["homozygous recessive", "recessive parent"]},
                {"point": "ratio 1:1 means heterozygous", "keywords": ["1:1", "heterozygous"]},
                {"point": "all dominant means homozygous", "keywords": ["homozygous dominant", "all dominant"]},
            ],
            2,
        )
    ],
    "human-physiology": [
        (
            "Explain how insulin lowers blood glucose.",
            [
                {"point": "beta cells secrete it", "keywords": ["beta cell", "islets", "pancreas"]},
                {"point": "cells take up glucose", "keywords": ["uptake", "glut4", "absorb glucose"]},
                {"point": "glycogen is made", "keywords": ["glycogen", "glycogenesis"]},
            ],
            2,
        )
    ],
    "plant-physiology": [
        (
            "Describe how C4 plants avoid photorespiration.",
            [
                {"point": "PEP carboxylase fixes CO2 first", "keywords": ["pep carboxylase", "pepcase", "oaa"]},
                {"point": "Kranz anatomy", "keywords": ["kranz", "bundle sheath"]},
                {"point": "high CO2 around RuBisCO", "keywords": ["concentrate", "high co2", "rubisco"]},
            ],
            3,
        )
    ],
    "ecology": [
        (
            "Explain biomagnification with an example.",
            [
                {"point": "concentration rises up trophic levels", "keywords": ["trophic level", "food chain"]},
                {"point": "an example toxin", "keywords": ["ddt", "mercury"]},
                {"point": "not excreted or broken down", "keywords": ["not excreted", "accumulate", "fat"]},
            ],
            2,
        )
    ],
    "biotechnology": [
        (
            "Describe the three steps of one PCR cycle.",
            [
                {"point": "denaturation", "keywords": ["denaturation", "denature"]},
                {"point": "annealing of primers", "keywords": ["annealing", "primer"]},
                {"point": "extension by Taq polymerase", "keywords": ["extension", "taq"]},
            ],
            2,
        )
    ],
    "reproduction": [
        (
            "Describe double fertilisation in flowering plants.",
            [
                {"point": "syngamy with the egg", "keywords": ["syngamy", "egg", "zygote"]},
                {"point": "triple fusion with polar nuclei", "keywords": ["triple fusion", "polar nuclei"]},
                {"point": "endosperm forms", "keywords": ["endosperm", "pen"]},
            ],
            3,
        )
    ],
    "evolution": [
        (
            "Explain how industrial melanism supports natural selection.",
            [
                {"point": "dark moths camouflaged on sooty trees", "keywords": ["camouflage", "soot", "dark"]},
                {"point": "predation by birds", "keywords": ["bird", "predator", "predation"]},
                {"point": "frequency of melanic form rose", "keywords": ["frequency", "increase", "melanic"]},
            ],
            2,
        )
    ],
}
