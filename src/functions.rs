//! DataFusion functions of userport, registered in every session by the pipeline.
//!
//! `json_path(json_text, step, …)`: the value at a path inside a JSON text column, as JSON
//! text (`NULL` when the path leads nowhere). Steps are text keys or integer indexes.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, StringBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, FieldRef};
use datafusion::common::{Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility, lit,
};

use crate::js::op::{Binary, Logical, Unary};
use crate::json::{self, Reached, Step};
use crate::source::schema::json_field;

/// The `json_path` function (see the module documentation).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct JsonPath {
    signature: Signature,
}

impl Default for JsonPath {
    fn default() -> Self {
        JsonPath {
            signature: Signature::variadic_any(Volatility::Immutable),
        }
    }
}

/// The `json_path` UDF.
pub fn json_path_udf() -> Arc<ScalarUDF> {
    static UDF: std::sync::LazyLock<Arc<ScalarUDF>> =
        std::sync::LazyLock::new(|| Arc::new(ScalarUDF::new_from_impl(JsonPath::default())));
    UDF.clone()
}

/// `json_path(json, steps…)` as an expression.
pub fn json_path(json: Expr, steps: &[Step]) -> Expr {
    let mut args = vec![json];
    args.extend(steps.iter().map(|step| match step {
        Step::Key(key) => lit(key.as_str()),
        Step::Index(index) => lit(*index as i64),
    }));
    json_path_udf().call(args)
}

/// One step of `json_path` given as a constant: a text is a key, a number an index.
pub fn path_step(value: &ScalarValue) -> Result<Step> {
    match value {
        ScalarValue::Utf8(Some(key))
        | ScalarValue::Utf8View(Some(key))
        | ScalarValue::LargeUtf8(Some(key)) => Ok(Step::Key(key.clone())),
        scalar => match scalar.cast_to(&DataType::Int64)? {
            ScalarValue::Int64(Some(i)) if i >= 0 => Ok(Step::Index(i as usize)),
            other => exec_err!("json_path: a step must be a key or an index, not {other}"),
        },
    }
}

/// What the rest of a path gives from `value`, where a plain walk stopped
/// ([`Reached::Stopped`]): with JavaScript's member semantics, a string's `length` or one
/// of its characters, an array's `length`; anything else is `undefined` (`None`).
pub fn path_rest(value: &str, rest: &[Step]) -> Option<String> {
    if !matches!(value.as_bytes().first(), Some(b'"' | b'[')) {
        return None;
    }
    rest.iter()
        .fold(crate::js::Value::from_json(value), |v, step| {
            crate::js::ops::member(&v, step)
        })
        .to_json()
}

/// The functions of field expressions (`search` adds its own).
pub fn all() -> Vec<Arc<ScalarUDF>> {
    let mut udfs = vec![json_path_udf(), sort_key_udf()];
    udfs.extend(JsOp::all().into_iter().map(js_udf));
    udfs
}

impl ScalarUDFImpl for JsonPath {
    fn name(&self) -> &str {
        "json_path"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        if args.arg_fields.is_empty() {
            return plan_err!("json_path needs a JSON text and at least one step");
        }
        // The field is named after the path it reads: objects read by the same path are the
        // same object (see `origin` in the `js_*` functions).
        let mut name = args.arg_fields[0].name().clone();
        for scalar in args.scalar_arguments.iter().skip(1) {
            match scalar {
                Some(ScalarValue::Utf8(Some(key))) => name.push_str(&format!(".{key}")),
                Some(other) => name.push_str(&format!("[{other}]")),
                None => name.push_str("[?]"),
            }
        }
        Ok(Arc::new(json_field(&name)))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let mut values = args.args.into_iter();
        let Some(json) = values.next() else {
            return exec_err!("json_path needs a JSON text");
        };
        let steps = values
            .map(|value| match value {
                ColumnarValue::Scalar(scalar) => path_step(&scalar),
                ColumnarValue::Array(_) => {
                    exec_err!("json_path: steps must be constants")
                }
            })
            .collect::<Result<Vec<_>>>()?;
        let array: ArrayRef = match json {
            ColumnarValue::Array(array) => array,
            ColumnarValue::Scalar(scalar) => scalar.to_array_of_size(1)?,
        };
        let array = cast(&array, &DataType::Utf8)?;
        let Some(texts) = datafusion::arrow::array::AsArray::as_string_opt::<i32>(&array) else {
            return exec_err!("json_path: its argument is not text after a cast to text");
        };
        let mut out = StringBuilder::with_capacity(texts.len(), texts.len() * 8);
        for text in texts.iter() {
            match text.map(|t| json::reach(t, &steps)) {
                Some(Reached::Found(found)) => out.append_value(found),
                Some(Reached::Stopped { value, step }) => {
                    out.append_option(path_rest(value, &steps[step..]));
                }
                None => out.append_null(),
            }
        }
        let result: ArrayRef = Arc::new(out.finish());
        if args.number_rows != result.len() && result.len() == 1 {
            return Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(
                &result, 0,
            )?));
        }
        Ok(ColumnarValue::Array(result))
    }
}

/// What a `js_*` function computes: an operator of the expression language (declared
/// once, in [`crate::js::op`]) or one of the forms below.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JsOp {
    /// `-a`, `!a`.
    Unary(Unary),
    /// `a + b`, `a < b`, …
    Binary(Binary),
    /// `a || b || …`, `a && …`, `a ?? …` (one operand returned).
    Logical(Logical),
    /// `t ? a : b`.
    Cond,
    /// A template literal: the ToString of every argument, joined.
    Concat,
    /// `value[step]…` with constant steps.
    Get,
    /// `receiver.method(args…)`, the method name a constant second argument.
    Call,
    /// A global function, its name a constant first argument.
    Fn,
    /// The first argument that is not undefined (a typed attribute, then its `_extra` value).
    Defined,
}

impl JsOp {
    /// Every operation.
    pub fn all() -> Vec<JsOp> {
        let forms = [
            JsOp::Cond,
            JsOp::Concat,
            JsOp::Get,
            JsOp::Call,
            JsOp::Fn,
            JsOp::Defined,
        ];
        Unary::ALL
            .iter()
            .map(|&op| JsOp::Unary(op))
            .chain(Binary::ALL.iter().map(|&op| JsOp::Binary(op)))
            .chain(Logical::ALL.iter().map(|&op| JsOp::Logical(op)))
            .chain(forms)
            .collect()
    }

    /// The SQL name of the function: `js_` and the operation's word.
    pub fn name(self) -> String {
        let word = match self {
            JsOp::Unary(op) => op.word(),
            JsOp::Binary(op) => op.word(),
            JsOp::Logical(op) => op.word(),
            JsOp::Cond => "cond",
            JsOp::Concat => "concat",
            JsOp::Get => "get",
            JsOp::Call => "call",
            JsOp::Fn => "fn",
            JsOp::Defined => "defined",
        };
        format!("js_{word}")
    }

    /// Whether argument `i` is a constant (a name or a step), not a value.
    fn is_constant(self, i: usize) -> bool {
        match self {
            JsOp::Get => i >= 1,
            JsOp::Call => i == 1,
            JsOp::Fn => i == 0,
            _ => false,
        }
    }
}

/// A `js_*` function: one operation of the expression language, computed with
/// JavaScript's semantics (see [`crate::js`]). Arguments may be JSON texts (marked fields),
/// text, booleans or numbers; `NULL` is `undefined`. The result is a JSON text.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct JsFunction {
    op: JsOp,
    name: String,
    signature: Signature,
}

/// The UDF of one operation.
pub fn js_udf(op: JsOp) -> Arc<ScalarUDF> {
    Arc::new(ScalarUDF::new_from_impl(JsFunction {
        op,
        name: op.name(),
        signature: Signature::variadic_any(Volatility::Immutable),
    }))
}

/// A call of the `js_*` function of `op`.
pub fn js(op: JsOp, args: Vec<Expr>) -> Expr {
    js_udf(op).call(args)
}

/// One argument column, viewed as JavaScript values row by row.
enum Column {
    Json(datafusion::arrow::array::StringArray),
    Text(datafusion::arrow::array::StringArray),
    Bool(datafusion::arrow::array::BooleanArray),
    Num(datafusion::arrow::array::Float64Array),
    Undefined,
}

impl Column {
    fn new(value: &ColumnarValue, field: &FieldRef) -> Result<Column> {
        use datafusion::arrow::array::AsArray;
        use datafusion::arrow::datatypes::Float64Type;
        let array = value.to_array(1)?;
        Ok(match array.data_type() {
            DataType::Null => Column::Undefined,
            DataType::Boolean => Column::Bool(array.as_boolean().clone()),
            t if t.is_numeric() => Column::Num(
                cast(&array, &DataType::Float64)?
                    .as_primitive::<Float64Type>()
                    .clone(),
            ),
            _ => {
                let text = cast(&array, &DataType::Utf8)?.as_string::<i32>().clone();
                if crate::source::schema::is_json(field) {
                    Column::Json(text)
                } else {
                    Column::Text(text)
                }
            }
        })
    }

    /// Row `row` as a value, with the origin of an object or array read from the user.
    fn value<'s>(&'s self, row: usize, name: &'s str) -> (crate::js::Value<'s>, Option<&'s str>) {
        use crate::js::Value;
        use std::borrow::Cow;
        let len = match self {
            Column::Json(a) | Column::Text(a) => a.len(),
            Column::Bool(a) => a.len(),
            Column::Num(a) => a.len(),
            Column::Undefined => return (Value::Undefined, None),
        };
        let row = if len == 1 { 0 } else { row };
        let value = match self {
            Column::Json(a) if a.is_valid(row) => {
                let cell = crate::js::cell::decode(a.value(row));
                let (origin, value) = (cell.origin, cell.value);
                let origin = match value {
                    Value::Object(_) | Value::Array(_) => origin.or(Some(name)),
                    _ => None,
                };
                return (value, origin);
            }
            Column::Text(a) if a.is_valid(row) => Value::Str(Cow::Borrowed(a.value(row))),
            Column::Bool(a) if a.is_valid(row) => Value::Bool(a.value(row)),
            Column::Num(a) if a.is_valid(row) => Value::Num(a.value(row)),
            _ => Value::Undefined,
        };
        (value, None)
    }
}

/// A constant argument's text (a method or function name, a key).
fn constant(value: &ColumnarValue) -> Result<Step> {
    match value {
        ColumnarValue::Scalar(ScalarValue::Utf8(Some(s)))
        | ColumnarValue::Scalar(ScalarValue::Utf8View(Some(s)))
        | ColumnarValue::Scalar(ScalarValue::LargeUtf8(Some(s))) => Ok(Step::Key(s.clone())),
        ColumnarValue::Scalar(scalar) => match scalar.cast_to(&DataType::Int64)? {
            ScalarValue::Int64(Some(i)) if i >= 0 => Ok(Step::Index(i as usize)),
            other => exec_err!("a constant key or name was expected, not {other}"),
        },
        ColumnarValue::Array(_) => exec_err!("a constant key or name was expected"),
    }
}

fn key_text(step: &Step) -> String {
    match step {
        Step::Key(k) => k.clone(),
        Step::Index(i) => i.to_string(),
    }
}

impl ScalarUDFImpl for JsFunction {
    fn name(&self) -> &str {
        &self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn return_field_from_args(&self, _args: ReturnFieldArgs) -> Result<FieldRef> {
        Ok(Arc::new(json_field(self.name())))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        use crate::js::{Value, ops};
        let mut steps = Vec::new();
        let mut columns = Vec::new();
        for (i, (value, field)) in args.args.iter().zip(&args.arg_fields).enumerate() {
            if self.op.is_constant(i) {
                steps.push(constant(value)?);
            } else {
                columns.push((Column::new(value, field)?, field.name().as_str()));
            }
        }
        let name = steps.first().map(key_text).unwrap_or_default();
        let rows = args.number_rows;
        let mut out = StringBuilder::with_capacity(rows, rows * 8);
        let mut values: Vec<Value<'_>> = Vec::with_capacity(columns.len());
        let mut origins: Vec<Option<&str>> = Vec::with_capacity(columns.len());
        for row in 0..rows {
            values.clear();
            origins.clear();
            for (column, name) in &columns {
                let (value, origin) = column.value(row, name);
                values.push(value);
                origins.push(origin);
            }
            let arg = |i: usize| values.get(i).cloned().unwrap_or(Value::Undefined);
            let threw = |i: usize| matches!(values.get(i), Some(Value::Throw));
            let any_threw = values.iter().any(|v| matches!(v, Value::Throw));
            // A throw in an operand that JavaScript evaluates makes the whole expression throw;
            // `||`, `&&`, `??`, `?:` and optional calls skip operands, and their throws.
            // The operand that a logical operator returns keeps its identity.
            let chosen = match self.op {
                // A chain returns the first operand that decides it, or its last; a throw
                // counts only when the chain gets that far.
                JsOp::Logical(Logical::Or)
                | JsOp::Logical(Logical::And)
                | JsOp::Logical(Logical::Coalesce) => values
                    .iter()
                    .position(|v| {
                        matches!(v, Value::Throw)
                            || match self.op {
                                JsOp::Logical(Logical::Or) => v.truthy(),
                                JsOp::Logical(Logical::And) => !v.truthy(),
                                _ => !v.is_nullish(),
                            }
                    })
                    .or(values.len().checked_sub(1)),
                _ if threw(0) => None,
                JsOp::Cond => Some(if arg(0).truthy() { 1 } else { 2 }),
                JsOp::Defined => values.iter().position(|v| !matches!(v, Value::Undefined)),
                _ => None,
            };
            let mut origin: Option<String> = chosen
                .and_then(|i| origins.get(i).copied().flatten())
                .map(str::to_string);
            // Objects and arrays are equal when they are the same object: read by the same path.
            let same_object = || match (&values.first(), &values.get(1)) {
                (
                    Some(Value::Object(_) | Value::Array(_)),
                    Some(Value::Object(_) | Value::Array(_)),
                ) => Some(origins[0].is_some() && origins[0] == origins[1]),
                _ => None,
            };
            let result = match self.op {
                JsOp::Cond | JsOp::Get if threw(0) => Value::Throw,
                JsOp::Logical(Logical::Or)
                | JsOp::Logical(Logical::And)
                | JsOp::Logical(Logical::Coalesce)
                | JsOp::Cond
                | JsOp::Defined => chosen.map_or(Value::Undefined, arg),
                JsOp::Call if threw(0) => Value::Throw,
                JsOp::Call if !ops::has_method_for(&arg(0), &name) => Value::Undefined,
                _ if any_threw => Value::Throw,
                JsOp::Binary(Binary::Add) => ops::add(&arg(0), &arg(1)),
                JsOp::Binary(Binary::Sub) => ops::arithmetic('-', &arg(0), &arg(1)),
                JsOp::Binary(Binary::Mul) => ops::arithmetic('*', &arg(0), &arg(1)),
                JsOp::Binary(Binary::Div) => ops::arithmetic('/', &arg(0), &arg(1)),
                JsOp::Binary(Binary::Rem) => ops::arithmetic('%', &arg(0), &arg(1)),
                JsOp::Binary(Binary::Eq) | JsOp::Binary(Binary::StrictEq)
                    if same_object().is_some() =>
                {
                    Value::Bool(same_object() == Some(true))
                }
                JsOp::Binary(Binary::Ne) | JsOp::Binary(Binary::StrictNe)
                    if same_object().is_some() =>
                {
                    Value::Bool(same_object() == Some(false))
                }
                JsOp::Binary(Binary::Eq) => Value::Bool(ops::loose_equals(&arg(0), &arg(1))),
                JsOp::Binary(Binary::Ne) => Value::Bool(!ops::loose_equals(&arg(0), &arg(1))),
                JsOp::Binary(Binary::StrictEq) => Value::Bool(ops::strict_equals(&arg(0), &arg(1))),
                JsOp::Binary(Binary::StrictNe) => {
                    Value::Bool(!ops::strict_equals(&arg(0), &arg(1)))
                }
                JsOp::Binary(Binary::Lt) => Value::Bool(ops::compare("<", &arg(0), &arg(1))),
                JsOp::Binary(Binary::Le) => Value::Bool(ops::compare("<=", &arg(0), &arg(1))),
                JsOp::Binary(Binary::Gt) => Value::Bool(ops::compare(">", &arg(0), &arg(1))),
                JsOp::Binary(Binary::Ge) => Value::Bool(ops::compare(">=", &arg(0), &arg(1))),
                JsOp::Unary(Unary::Neg) => Value::Num(-arg(0).to_number()),
                JsOp::Unary(Unary::Not) => Value::Bool(!arg(0).truthy()),
                JsOp::Concat => {
                    let parts: Vec<_> = values.iter().map(|v| v.to_js_string()).collect();
                    ops::joined(&parts)
                }
                JsOp::Get => {
                    origin = origins[0].map(|o| {
                        let mut o = o.to_string();
                        for step in &steps {
                            match step {
                                Step::Key(k) => o.push_str(&format!(".{k}")),
                                Step::Index(i) => o.push_str(&format!("[{i}]")),
                            }
                        }
                        o
                    });
                    steps.iter().fold(arg(0), |v, step| ops::member(&v, step))
                }
                JsOp::Call => ops::call(&arg(0), &name, &values[1.min(values.len())..]),
                JsOp::Fn => ops::global(&name, &values),
            };
            let text = crate::js::cell::encode(&result, origin.as_deref());
            // Arrow's text columns hold at most 2 GiB a batch: past that, an error instead
            // of arrow's panic.
            let held = out.values_slice().len() + text.as_ref().map_or(0, |t| t.len());
            if held > i32::MAX as usize {
                return exec_err!(
                    "{}: the values of one batch of users pass 2 GiB of text; the expression \
                     makes strings too long to report",
                    self.name()
                );
            }
            out.append_option(text);
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

/// One argument column viewed as JavaScript values (for the search functions).
pub struct ValueColumn(Column);

impl ValueColumn {
    /// Views an argument.
    pub fn new(value: &ColumnarValue, field: &FieldRef) -> Result<ValueColumn> {
        Ok(ValueColumn(Column::new(value, field)?))
    }

    /// Row `row` as a value.
    pub fn value(&self, row: usize) -> crate::js::Value<'_> {
        self.0.value(row, "").0
    }
}

/// `js_sort_key(value)`: a text whose byte order is userport's order of JavaScript values:
/// numbers (by value), then strings (by code point), then booleans, then objects and arrays
/// (by their JSON text); undefined and null are NULL (sorted last).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct SortKeyFunction {
    signature: Signature,
}

/// The `js_sort_key` UDF.
pub fn sort_key_udf() -> Arc<ScalarUDF> {
    Arc::new(ScalarUDF::new_from_impl(SortKeyFunction {
        signature: Signature::any(1, Volatility::Immutable),
    }))
}

/// The sort key of one value (see [`SortKeyFunction`]).
pub fn sort_key(value: &crate::js::Value<'_>) -> Option<String> {
    use crate::js::Value;
    Some(match value {
        Value::Undefined | Value::Null | Value::Throw => return None,
        Value::Num(n) if n.is_nan() => return None,
        Value::Num(n) => {
            // Order-preserving bits: flip all bits of negatives, the sign bit of positives.
            let bits = (n + 0.0).to_bits();
            let ordered = if bits >> 63 == 1 {
                !bits
            } else {
                bits | (1 << 63)
            };
            format!("0{ordered:016x}")
        }
        Value::Str(s) => format!("1{s}"),
        Value::Bool(b) => format!("2{b}"),
        Value::Object(t) | Value::Array(t) => format!("3{t}"),
    })
}

impl ScalarUDFImpl for SortKeyFunction {
    fn name(&self) -> &str {
        "js_sort_key"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let column = Column::new(&args.args[0], &args.arg_fields[0])?;
        let mut out = StringBuilder::with_capacity(args.number_rows, args.number_rows * 8);
        for row in 0..args.number_rows {
            let (value, _) = column.value(row, "");
            out.append_option(sort_key(&value));
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}
