"""The lending desk (DOMAIN section 6): products, brokers, applications and their parties,
settlement, repayment schedules, repayments, arrears and reminders."""
