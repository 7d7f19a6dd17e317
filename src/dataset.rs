//! The two datasets, declared once. This declaration drives the JSON parser (which keys
//! to pick), the casts, the quality rules, the Postgres DDL, the COPY encoder and
//! validation: nothing else in the crate names a column.

/// The type a field is cast to, and stored as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    /// A 1-5 style integer, stored as `integer`.
    Int,
    /// A measure, stored as `double precision` (never rounded, unlike the original's DECIMAL(6,2)).
    Float,
    /// `YYYY-MM-DD HH:MM:SS` or ISO 8601, UTC unless an offset is given; stored as `timestamptz`.
    Timestamp,
}

impl Kind {
    /// Whether the bare `NaN` / `Infinity` tokens some exporters write (not JSON) are read
    /// for this field: only numbers can hold them.
    pub fn is_numeric(self) -> bool {
        matches!(self, Kind::Int | Kind::Float)
    }

    pub fn sql_type(self) -> &'static str {
        match self {
            Kind::Text => "text",
            Kind::Int => "integer",
            Kind::Float => "double precision",
            Kind::Timestamp => "timestamptz",
        }
    }
}

/// A range check applied after casting (rule `out_of_range`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Range {
    None,
    /// Inclusive bounds.
    Between(f64, f64),
    NonNegative,
}

#[derive(Debug, Clone, Copy)]
pub struct Field {
    /// Column name in Postgres and in frames.
    pub name: &'static str,
    /// Key in the export, without the view prefix.
    pub key: &'static str,
    pub kind: Kind,
    pub required: bool,
    pub range: Range,
}

#[derive(Debug)]
pub struct Dataset {
    /// Table name; also the default file stem (`<name>.json`).
    pub name: &'static str,
    /// The BI view prefix the export puts before every key (`segment_tracks.`).
    pub prefix: &'static str,
    pub fields: &'static [Field],
    /// The timestamp field that places a row on a day (validation, reports, lake).
    pub day_field: &'static str,
}

const fn f(name: &'static str, key: &'static str, kind: Kind, required: bool, range: Range) -> Field {
    Field { name, key, kind, required, range }
}

use Kind::*;

pub static TRACK_EVENTS: Dataset = Dataset {
    name: "track_events",
    prefix: "segment_tracks.",
    day_field: "original_timestamp",
    fields: &[
        f("anonymous_id", "anonymous_id", Text, true, Range::None),
        f("app_build", "context_app_build", Text, false, Range::None),
        f("app_name", "context_app_name", Text, false, Range::None),
        f("app_version", "context_app_version", Text, false, Range::None),
        f("device_id", "context_device_id", Text, false, Range::None),
        f("device_manufacturer", "context_device_manufacturer", Text, false, Range::None),
        f("device_model", "context_device_model", Text, false, Range::None),
        f("device_type", "context_device_type", Text, false, Range::None),
        f("os_name", "context_os_name", Text, false, Range::None),
        f("os_version", "context_os_version", Text, false, Range::None),
        f("timezone", "context_timezone", Text, false, Range::None),
        f("event_name", "event_name", Text, true, Range::None),
        f("properties_rating", "properties_rating", Int, false, Range::Between(1.0, 5.0)),
        f("original_timestamp", "original_timestamp_time", Timestamp, true, Range::None),
        f("sent_time", "sent_time", Timestamp, true, Range::None),
        f("received_time", "received_time", Timestamp, true, Range::None),
    ],
};

pub static WEATHER: Dataset = Dataset {
    name: "weather",
    prefix: "weather_data.",
    day_field: "date_time",
    fields: &[
        f("city", "city", Text, true, Range::None),
        f("date_time", "date_time", Timestamp, true, Range::None),
        f("apparenttemperature", "currently_apparenttemperature", Float, false, Range::None),
        f("humidity", "currently_humidity", Float, false, Range::Between(0.0, 1.0)),
        f("precipintensity", "currently_precipintensity", Float, false, Range::NonNegative),
        f("precipprobability", "currently_precipprobability", Float, false, Range::Between(0.0, 1.0)),
        f("preciptype", "currently_preciptype", Text, false, Range::None),
        f("temperature", "currently_temperature", Float, false, Range::None),
        f("visibility", "currently_visibility", Float, false, Range::NonNegative),
        f("windspeed", "currently_windspeed", Float, false, Range::NonNegative),
    ],
};

pub static ALL: [&Dataset; 2] = [&TRACK_EVENTS, &WEATHER];

impl Dataset {
    pub fn by_name(name: &str) -> Option<&'static Dataset> {
        ALL.iter().copied().find(|d| d.name == name)
    }

    pub fn file_name(&self) -> String {
        format!("{}.json", self.name)
    }

    pub fn rejects_table(&self) -> String {
        format!("{}_rejects", self.name)
    }

    /// Index of the field a JSON key belongs to. Keys may carry the view prefix or not.
    /// A hash lookup: this runs for every key of every record.
    pub fn field_index(&self, key: &str) -> Option<usize> {
        self.key_map().get(key).copied()
    }

    /// Every spelling of every key (prefixed, bare, column name) -> field index.
    fn key_map(&self) -> &'static std::collections::HashMap<String, usize, ahash::RandomState> {
        use std::sync::OnceLock;
        type Map = std::collections::HashMap<String, usize, ahash::RandomState>;
        static MAPS: [OnceLock<Map>; 2] = [OnceLock::new(), OnceLock::new()];
        let slot = ALL.iter().position(|d| std::ptr::eq(*d, self)).expect("datasets are the declared statics");
        MAPS[slot].get_or_init(|| {
            let mut m = Map::default();
            for (i, f) in self.fields.iter().enumerate() {
                for k in [format!("{}{}", self.prefix, f.key), f.key.to_string(), f.name.to_string(), format!("{}{}", self.prefix, f.name)]
                {
                    m.entry(k).or_insert(i);
                }
            }
            m
        })
    }

    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_map_with_or_without_prefix() {
        let d = &TRACK_EVENTS;
        let i = d.field_index("segment_tracks.context_app_build").unwrap();
        assert_eq!(d.fields[i].name, "app_build");
        assert_eq!(d.field_index("context_app_build"), Some(i));
        assert_eq!(d.field_index("app_build"), Some(i));
        let t = d.field_index("segment_tracks.original_timestamp_time").unwrap();
        assert_eq!(d.fields[t].name, "original_timestamp");
        assert_eq!(d.field_index("segment_tracks.nope"), None);
        assert_eq!(WEATHER.fields[WEATHER.field_index("weather_data.currently_humidity").unwrap()].name, "humidity");
    }

    #[test]
    fn day_fields_are_declared_timestamps() {
        for d in ALL {
            assert_eq!(d.field(d.day_field).unwrap().kind, Kind::Timestamp);
        }
    }
}
