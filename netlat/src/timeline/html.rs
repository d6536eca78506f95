//! Placeholder until the page lands: the data alone.

use super::page_data::PageData;

pub fn page(data: &PageData) -> String {
    let json = serde_json::to_string(data).expect("page data serializes");
    format!(
        "<!doctype html><title>netlat</title><script type=\"application/json\" id=\"netlat-data\">{}</script>\n",
        json.replace('<', "\\u003c")
    )
}
