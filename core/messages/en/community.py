"""English: stories, tips, thanks, lenders' portfolios, statements and data rights
(docs/community.md). SMS within 160 characters with the longest usual values, unless
said otherwise; USSD screens within 182."""

TEXTS = {
    # an agent's record, beside each loan a lender may lend to (SMS and USSD)
    "agent.record": "agent: {on_time} of {ended} on time",
    "agent.new": "agent: no record yet",
    # stories
    "sms.story_usage": "Send STORY and a few words about what your loan did for you, e.g. STORY I bought a fridge and now sell cold drinks.",
    "story.too_long": "Your story has {length} characters. Please keep it to {max} and send it again.",
    "story.plain_letters": "Please write your story with plain letters and numbers only, and send it again.",
    "story.no_repaid_loan": "Stories are for members who have repaid a loan. Once yours is repaid, we would love to hear your story.",
    "story.already_shared": "Your story about loan {loan} was already shared with your lenders. Thank you!",
    "story.not_found": "No story {id}.",
    "story.decided": "Story {id} is already {status}.",
    "sms.story_received": "Thank you! We will read your story and send it to your lenders within a few days.",
    "sms.story_lender": "{name} repaid {loan} and says: \"{story}\" Reply THANKS {loan} to thank them.",
    "sms.story_member": "A Harambee story: {name} repaid {loan} and says: \"{story}\"",
    "sms.story_approved": "Your story about loan {loan} has gone to your lenders. Thank you for sharing it!",
    "sms.story_declined": "Thank you for your story about loan {loan}. We could not share this one; you are welcome to send another.",
    # tips
    "sms.tips_usage": "Send TIPS ON for one money tip a week, or TIPS OFF to stop them.",
    "sms.tips_on": "Done: you will get one money tip a week, and stories from borrowers. Reply TIPS OFF to stop.",
    "sms.tips_off": "Done: no more tips or stories. Messages about your loans and pledges still come. Reply TIPS ON to start again.",
    "sms.tip": "Harambee tip: {tip} Reply TIPS OFF to stop.",
    # thanks
    "sms.thanks_usage": "Send THANKS and the loan number, e.g. THANKS L1042.",
    "sms.thanks_sent": "Your thanks went to the borrower of {loan}.",
    "sms.thanks_already": "You have already thanked the borrower of {loan}.",
    "sms.thanks_received": "A lender of your loan {loan} says thank you. People in your community believe in you!",
    # a lender's portfolio
    "sms.portfolio": "Your lending, {loans} loans: lent {lent}, got back {back}, still to come {to_come}, late {late}, lost in default {lost}.",
    "sms.portfolio_none": "You have not lent yet. Send LOANS to see who needs a loan.",
    "ussd.wallet.portfolio": "My lending",
    "ussd.portfolio.body": "Lent {lent} on {loans} loans\nGot back {back}\nStill to come {to_come}\nLate {late}\nLost in default {lost}",
    "ussd.portfolio.none": "You have not lent yet. Choose Lend in the main menu to start.",
    # statements (up to two SMS parts)
    "sms.statement": "Statement {date}: wallet {balance} ({held} held for pledges). Loans: {items}.",
    "sms.statement_no_loans": "Statement {date}: wallet {balance} ({held} held for pledges). You have no loans. For your lending, send PORTFOLIO.",
    "sms.statement_loan": "{loan} {amount} {state}",
    "sms.statement_owing": "{loan} {amount} {state}, {left} left to pay",
    # data rights (the DATA reply may take two SMS parts)
    "sms.data_usage": "Send DATA to see what we hold about you, DATA FIX and what is wrong to correct it, or DATA DELETE to have it erased.",
    "sms.data_fix_usage": "Send DATA FIX and what is wrong, e.g. DATA FIX my name is Amina Atieno.",
    "sms.data_held": "Harambee holds: {details}; {loans} loans, {pledges} pledges, {payments} payments, {messages} SMS. To correct: DATA FIX <what>. To erase: DATA DELETE.",
    "sms.data_phone": "phone {phone}",
    "sms.data_id": "ID ending {end}",
    "sms.data_agent": "agent {agent}",
    "sms.data_fix_opened": "We opened request {case} to correct your details. We will answer by {due}.",
    "sms.data_erase_opened": "We opened request {case} to erase your details. We will answer by {due}. Loan and payment records stay, as the law requires.",
    "sms.data_fixed": "Request {case} is done: your details are corrected. Send DATA to see them.",
    "sms.data_refused": "We could not complete request {case}. Please call us on {phone} to talk about it.",
    "sms.data_erased": "Request {case} is done: your details are erased from Harambee. Loan and payment records stay, as the law requires.",
    "data.case_not_found": "No request {case}.",
    "data.case_closed": "Request {case} is already {status}.",
    "data.erase_by_erase": "Request {case} is an erasure: erase the member to close it.",
    "data.not_erasure": "Request {case} is a correction, not an erasure.",
    "privacy.open_loan": "Loan {loan} is still open: we can erase your details once it is closed.",
    "privacy.lending": "Money you lent on loan {loan} is still coming back: we can erase your details once it is settled.",
    "privacy.wallet": "Your wallet holds {amount}: withdraw it first, then we can erase your details.",
}
