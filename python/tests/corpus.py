"""Derivatives whose generated code the JAX and PyTorch tests run against autodiff:
(expression, wrt, declarations, definitions, order)."""

CORPUS = [
    # The sheet's three problems.
    ("½‖WᵀWx − x‖²", "W", [], [], 1),
    ("−c − D/2 log|K| − ½ tr(K⁻¹YYᵀ)", "X", [], ["K = αXXᵀ + β⁻¹I"], 1),
    ("½‖W₂ swish(z₁) + b₂ − y‖²", "W₁,b₁,W₂,b₂", [], ["z₁ = W₁x + b₁"], 1),
    # Matrix Cookbook gradients.
    ("aᵀXb", "X", [], [], 1),
    ("bᵀXᵀDXc", "X", [], [], 1),
    ("(Xb + c)ᵀD(Xb + c)", "X", [], [], 1),
    ("tr(AXBX)", "X", [], [], 1),
    ("tr((AXB + C)(AXB + C)ᵀ)", "X", [], [], 1),
    ("aᵀX⁻¹b", "X", ["X: n×n spd"], [], 1),
    ("log|X|", "X", ["X: n×n spd"], [], 1),
    ("det(X)", "X", ["X: n×n spd"], [], 1),
    ("tr(AX)", "X", ["X: n×n sym"], [], 1),
    ("sum(σ(Wx))", "W", [], [], 1),
    ("sum(tanh(Wx) ⊙ exp(Wx))", "x", [], [], 1),
    ("α‖x‖² + βxᵀAx", "α,β,x", [], [], 1),
    # Jacobians, Hessians, differentials.
    ("σ(Wx)", "x", [], [], 1),
    ("xᵀAx", "x", [], [], 2),
    ("‖Xw − y‖²", "w", [], [], 2),
    ("X⁻¹", "X", ["X: n×n spd"], [], 1),
    ("tr(XᵀAX)", "X", [], [], 2),
]
