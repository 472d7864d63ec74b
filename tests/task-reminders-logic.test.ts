import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { EventActor } from '../src/auth/actor.js'
import { recipientsOf } from '../src/notifications/rules.js'
import { renderMail } from '../src/notifications/templates.js'
import { reminderTime } from '../src/tasks/reminders.js'

const SYSTEM: EventActor = { type: 'system', id: null, name: 'system' }

describe('task reminders: pure logic', () => {
  it('falls due at remind_at, else at due_at', () => {
    const due = new Date('2026-12-08T15:00:00Z')
    const remind = new Date('2026-12-08T14:30:00Z')
    assert.equal(reminderTime({ due_at: due, remind_at: remind }), remind)
    assert.equal(reminderTime({ due_at: due, remind_at: null }), due)
  })

  it('mails the assignee of a due task, always, and nobody for an unassigned one', () => {
    const due = (assignedTo: number | null) =>
      recipientsOf({ type: 'task.due', actor: SYSTEM, data: { object: { assigned_to: assignedTo } } })
    assert.deepEqual(due(7), [{ kind: 'task_due', userId: 7 }])
    assert.deepEqual(due(null), [])
  })

  const context = (task: { lead_id: number | null }, timeZone?: string) => ({
    publicUrl: 'https://crm.example.com',
    recipientName: 'Ann',
    actorName: 'system',
    timeZone,
    task: { id: 12, title: 'Call <back>\r\nnow', due_at: '2026-12-08T15:00:00.000Z', ...task },
  })

  it('writes the due time on the recipient’s clock and links a lead’s task to the lead', () => {
    const english = renderMail('task_due', 'en', context({ lead_id: 5 }, 'America/Caracas'))
    assert.equal(english.subject, 'Reminder: Call <back> now')
    assert.match(english.text, /Your task #12 "Call <back>\r?\nnow" is due Tuesday, December 8, 2026 at 11:00/)
    assert.match(english.text, /\(America\/Caracas\)/)
    assert.match(english.text, /Open the lead: https:\/\/crm\.example\.com\/dashboard\/leads\/5\?lang=en\n$/)
    assert.match(english.html, /Call &lt;back&gt;/)
    const spanish = renderMail('task_due', 'es', context({ lead_id: 5 }, 'Europe/Madrid'))
    assert.equal(spanish.subject, 'Recordatorio: Call <back> now')
    assert.match(spanish.text, /vence el martes, 8 de diciembre de 2026, 16:00 \(Europe\/Madrid\)/)
    assert.match(spanish.text, /Ver el lead: https:\/\/crm\.example\.com\/dashboard\/leads\/5\n$/)
  })

  it('links a task on no lead to the task, in UTC when no zone is given', () => {
    const english = renderMail('task_due', 'en', context({ lead_id: null }))
    assert.match(english.text, /at 3:00\sPM \(UTC\)/)
    assert.match(english.text, /Open the task: https:\/\/crm\.example\.com\/tasks\/12\n$/)
    const spanish = renderMail('task_due', 'es', context({ lead_id: null }))
    assert.match(spanish.text, /Ver la tarea: https:\/\/crm\.example\.com\/tasks\/12\n$/)
  })
})
