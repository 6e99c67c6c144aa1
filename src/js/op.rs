//! The operators of the expression language, declared once: the parser makes them, the
//! `js_*` functions compute them.

/// A unary operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Unary {
    /// `-x`.
    Neg,
    /// `!x`.
    Not,
}

/// A binary operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Binary {
    /// `+`.
    Add,
    /// `-`.
    Sub,
    /// `*`.
    Mul,
    /// `/`.
    Div,
    /// `%`.
    Rem,
    /// `==`.
    Eq,
    /// `!=`.
    Ne,
    /// `===`.
    StrictEq,
    /// `!==`.
    StrictNe,
    /// `<`.
    Lt,
    /// `<=`.
    Le,
    /// `>`.
    Gt,
    /// `>=`.
    Ge,
}

impl Unary {
    /// Every unary operator.
    pub const ALL: &[Unary] = &[Unary::Neg, Unary::Not];

    /// The operator's word (in the name of its SQL function).
    pub fn word(self) -> &'static str {
        match self {
            Unary::Neg => "neg",
            Unary::Not => "not",
        }
    }
}

impl Binary {
    /// Every binary operator.
    pub const ALL: &[Binary] = &[
        Binary::Add,
        Binary::Sub,
        Binary::Mul,
        Binary::Div,
        Binary::Rem,
        Binary::Eq,
        Binary::Ne,
        Binary::StrictEq,
        Binary::StrictNe,
        Binary::Lt,
        Binary::Le,
        Binary::Gt,
        Binary::Ge,
    ];

    /// The operator's word (in the name of its SQL function).
    pub fn word(self) -> &'static str {
        match self {
            Binary::Add => "add",
            Binary::Sub => "sub",
            Binary::Mul => "mul",
            Binary::Div => "div",
            Binary::Rem => "rem",
            Binary::Eq => "eq",
            Binary::Ne => "ne",
            Binary::StrictEq => "strict_eq",
            Binary::StrictNe => "strict_ne",
            Binary::Lt => "lt",
            Binary::Le => "le",
            Binary::Gt => "gt",
            Binary::Ge => "ge",
        }
    }

    /// The operator as JavaScript writes it.
    pub fn symbol(self) -> &'static str {
        match self {
            Binary::Add => "+",
            Binary::Sub => "-",
            Binary::Mul => "*",
            Binary::Div => "/",
            Binary::Rem => "%",
            Binary::Eq => "==",
            Binary::Ne => "!=",
            Binary::StrictEq => "===",
            Binary::StrictNe => "!==",
            Binary::Lt => "<",
            Binary::Le => "<=",
            Binary::Gt => ">",
            Binary::Ge => ">=",
        }
    }
}

/// A logical operator (returns one of its operands).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Logical {
    /// `||`.
    Or,
    /// `&&`.
    And,
    /// `??`.
    Coalesce,
}

impl Logical {
    /// Every logical operator.
    pub const ALL: &[Logical] = &[Logical::Or, Logical::And, Logical::Coalesce];

    /// The operator's word (in the name of its SQL function).
    pub fn word(self) -> &'static str {
        match self {
            Logical::Or => "or",
            Logical::And => "and",
            Logical::Coalesce => "coalesce",
        }
    }

    /// The operator as JavaScript writes it.
    pub fn symbol(self) -> &'static str {
        match self {
            Logical::Or => "||",
            Logical::And => "&&",
            Logical::Coalesce => "??",
        }
    }
}
