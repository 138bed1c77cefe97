"""The protocol file of PamWorkChain (pam.yaml), and which protocols' results are not physics."""

#: protocols that test the machinery only; every place that shows their results says so
UNPHYSICAL_PROTOCOLS = {
    "smoke": "smoke protocol: low cut-offs, k and q meshes (q at Gamma alone unless overridden), NOT physical"
}
