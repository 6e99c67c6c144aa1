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

use crate::json::{Step, get_path};
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

/// Every function that a session needs.
pub fn all() -> Vec<Arc<ScalarUDF>> {
    vec![json_path_udf()]
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
        Ok(Arc::new(json_field(self.name())))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let mut values = args.args.into_iter();
        let Some(json) = values.next() else {
            return exec_err!("json_path needs a JSON text");
        };
        let steps = values
            .map(|value| match value {
                ColumnarValue::Scalar(ScalarValue::Utf8(Some(key)))
                | ColumnarValue::Scalar(ScalarValue::Utf8View(Some(key)))
                | ColumnarValue::Scalar(ScalarValue::LargeUtf8(Some(key))) => Ok(Step::Key(key)),
                ColumnarValue::Scalar(scalar) => match scalar.cast_to(&DataType::Int64)? {
                    ScalarValue::Int64(Some(i)) if i >= 0 => Ok(Step::Index(i as usize)),
                    other => exec_err!("json_path: a step must be a key or an index, not {other}"),
                },
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
        let texts = array
            .as_any()
            .downcast_ref::<datafusion::arrow::array::StringArray>()
            .expect("cast to Utf8");
        let mut out = StringBuilder::with_capacity(texts.len(), texts.len() * 8);
        for text in texts.iter() {
            out.append_option(text.and_then(|t| get_path(t, &steps)));
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
