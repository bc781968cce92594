//! The `budgets` table: period budgets, global or per playbook.

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "budgets")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// `global` or `playbook`.
    pub scope: String,
    /// The playbook's name, for scope `playbook`.
    pub playbook: Option<String>,
    /// `workflows::budget::Period` as text.
    pub period: String,
    pub micro_dollars: Option<i64>,
    pub tokens: Option<i64>,
    pub updated_at: DateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
