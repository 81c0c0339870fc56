//! What a method is ([`Method`]: a name, a parameter type, a result type; [`Streams`]: the
//! notifications it sends before or after its answer), the shapes several methods share,
//! and the entries of the catalogue of every method ([`super::catalogue`], for the schema
//! and the documentation's tests).

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One method of the control socket.
pub trait Method {
    /// Its name on the wire.
    const NAME: &'static str;
    /// Its parameters (`params`), always an object.
    type Params: Serialize + DeserializeOwned + JsonSchema;
    /// What it answers (`result`).
    type Result: Serialize + DeserializeOwned + JsonSchema;
}

/// A method that sends notifications on the same connection: a subscription's stream, or
/// a query's answers.
pub trait Streams: Method {
    /// The notifications' `method`.
    const NOTIFICATION: &'static str;
    /// Their `params`.
    type Notification: Serialize + DeserializeOwned + JsonSchema;
}

/// The parameters of a method that takes none: an empty object, or no `params` at all.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoParams {}

/// A subscription's answer: `{"subscribed": true}`; its notifications follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Subscribed {
    /// Always `true`.
    pub subscribed: bool,
}

impl Subscribed {
    /// The answer.
    pub const YES: Subscribed = Subscribed { subscribed: true };
}

/// How to check a JSON value against one of a method's types, and describe that type.
#[derive(Clone, Copy)]
pub struct Shape {
    /// Deserializes the value into the type (strictly: what the daemon or the CLI would
    /// refuse is an error) and serializes it back.
    pub check: fn(Value) -> Result<Value, serde_json::Error>,
    /// The type's schema (a reference into the generator's definitions).
    pub schema: fn(&mut SchemaGenerator) -> Schema,
}

impl Shape {
    fn of<T: Serialize + DeserializeOwned + JsonSchema>() -> Self {
        Self {
            check: |value| serde_json::from_value::<T>(value).and_then(|typed| serde_json::to_value(typed)),
            schema: |generator| generator.subschema_for::<T>(),
        }
    }
}

/// One method as the catalogue lists it.
#[derive(Clone, Copy)]
pub struct MethodInfo {
    /// Its name.
    pub name: &'static str,
    /// Its parameters.
    pub params: Shape,
    /// Its result.
    pub result: Shape,
    /// The notifications it sends: their `method` and `params`.
    pub notification: Option<(&'static str, Shape)>,
}

impl MethodInfo {
    /// The entry of `M`.
    pub fn of<M: Method>() -> Self {
        Self {
            name: M::NAME,
            params: Shape::of::<M::Params>(),
            result: Shape::of::<M::Result>(),
            notification: None,
        }
    }

    /// The entry with the notifications it sends: `method`, with `N` as params.
    pub fn notifying<N: Serialize + DeserializeOwned + JsonSchema>(self, method: &'static str) -> Self {
        Self {
            notification: Some((method, Shape::of::<N>())),
            ..self
        }
    }
}
