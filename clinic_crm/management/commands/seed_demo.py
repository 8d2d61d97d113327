"""Demo data for `make run`: two clinics in different time zones, staff for every role, patients, schedules and visits.

Idempotent: rows are found by their natural keys and only missing ones are made,
so running it twice changes nothing. Writes go through the same services as the
product (memberships, consent texts, consent + contact).
"""

from __future__ import annotations

import os
import random
from datetime import date, time, timedelta

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from clinics.models import Clinic, Doctor, Membership, Service, Specialty, Tag, WorkingHours
from clinics.services import membership_grant
from clinics.tenancy import Role
from patients.models import ConsentDocument, Patient
from patients.selectors import consent_current_document, consent_is_given
from patients.services import Attribution, clinic_join, consent_document_publish

DEMO_PASSWORD = "Demo-Clinic-2026"

CONSENT_TEXT = (
    "Я, действуя свободно, своей волей и в своём интересе, даю согласие {clinic} (далее — Оператор) "
    "на обработку моих персональных данных, включая специальные категории персональных данных о состоянии здоровья, "
    "в целях записи на приём, переписки с клиникой и врачами, напоминаний о визитах и контроля качества обслуживания. "
    "Перечень действий: сбор, запись, систематизация, накопление, хранение, уточнение, использование, обезличивание, "
    "блокирование, удаление, уничтожение. Согласие действует до его отзыва. Я могу отозвать согласие в личном кабинете "
    "в любой момент; отзыв не влияет на законность обработки до отзыва. (Федеральный закон № 152-ФЗ «О персональных данных».)"
)

CLINICS = [
    {
        "slug": "ulybka",
        "name": "Стоматология «Улыбка»",
        "time_zone": "Europe/Moscow",
        "phone": "+74951234567",
        "address": "Москва, ул. Тверская, 12",
        "staff_prefix": "moscow",
        "specialties": ["Стоматолог-терапевт", "Стоматолог-хирург", "Ортодонт"],
        "services": [
            ("Консультация стоматолога", 30, 1500, "Стоматолог-терапевт"),
            ("Лечение кариеса", 60, 5500, "Стоматолог-терапевт"),
            ("Удаление зуба", 45, 4000, "Стоматолог-хирург"),
            ("Консультация ортодонта", 30, 2000, "Ортодонт"),
        ],
        "doctors": [
            ("Иванова Мария Сергеевна", ["Стоматолог-терапевт"], "Лечит кариес и пульпит, 12 лет опыта."),
            ("Петров Алексей Викторович", ["Стоматолог-хирург"], "Удаление зубов любой сложности, имплантация."),
            ("Смирнова Ольга Андреевна", ["Ортодонт"], "Брекеты и элайнеры для детей и взрослых."),
        ],
        "tags": ["VIP", "Импланты", "Ребёнок"],
        "directions": "Метро «Пушкинская» или «Тверская», выход к ул. Тверской, 5 минут пешком; вход со двора, "
        "2-й этаж. Парковка платная, во дворе есть 3 места для пациентов — скажите охране фамилию.",
        "extraction": True,
    },
    {
        "slug": "zdorovie-ekb",
        "name": "Медцентр «Здоровье»",
        "time_zone": "Asia/Yekaterinburg",
        "phone": "+73431234567",
        "address": "Екатеринбург, пр. Ленина, 50",
        "staff_prefix": "ekb",
        "specialties": ["Терапевт", "Педиатр", "Гинеколог"],
        "services": [
            ("Приём терапевта", 30, 1800, "Терапевт"),
            ("Приём педиатра", 30, 1900, "Педиатр"),
            ("Приём гинеколога", 40, 2500, "Гинеколог"),
            ("Повторный приём", 20, 1200, None),
        ],
        "doctors": [
            ("Кузнецов Дмитрий Олегович", ["Терапевт"], "Терапевт высшей категории."),
            ("Соколова Анна Игоревна", ["Педиатр"], "Педиатр, ведёт детей с рождения."),
            ("Морозова Елена Павловна", ["Гинеколог"], "Деликатно отвечает на любые вопросы."),
        ],
        "tags": ["Повторный", "Семья", "ДМС"],
        "directions": "Остановка «Площадь 1905 года» (трамваи 1, 5, 13) или метро «Площадь 1905 года», "
        "3 минуты пешком; вход с пр. Ленина, 1-й этаж. Бесплатная парковка у здания.",
        "extraction": False,
    },
]

DEMO_DIALOGUES = [
    (
        "Здравствуйте! Можно записаться на профгигиену на этой неделе?",
        "Здравствуйте! Да, есть окна в четверг в 11:00 и в пятницу в 16:30. Какое удобнее?",
        "Четверг в 11:00, спасибо!",
    ),
    (
        "Добрый день. Сколько стоит приём и нужно ли что-то взять с собой?",
        "Добрый день! Первичный приём — по прайсу на странице клиники. Возьмите паспорт и полис ДМС, если есть.",
        "Понял, спасибо.",
    ),
    (
        "Подскажите, вы работаете в субботу? Ребёнок заболел.",
        "Да, в субботу с 10:00 до 16:00. Можем записать к педиатру на 10:30.",
        "Да, запишите, пожалуйста.",
    ),
    (
        "Пришли ли мои анализы? Сдавала в понедельник.",
        "Результаты готовы, врач посмотрит их и напишет вам здесь сегодня до 18:00.",
        "Спасибо, жду.",
    ),
    (
        "Хочу перенести визит на следующую неделю, это возможно?",
        "Конечно. Есть вторник 9:30 или среда 15:00.",
        "Среда 15:00 подойдёт.",
    ),
]

# The clinic's canned answers (shortcode, title, text); {…} are filled for the conversation's patient.
CANNED_ANSWERS = [
    (
        "адрес",
        "Адрес и как добраться",
        "{patient_first_name}, мы находимся по адресу: {clinic_address}. {directions} Телефон: {clinic_phone}.",
    ),
    ("цены", "Цены", "{patient_first_name}, наши цены: {prices}. Точную стоимость лечения врач назовёт после осмотра."),
    (
        "подготовка",
        "Подготовка к визиту",
        "{patient_first_name}, приходите, пожалуйста, за 10 минут до приёма. Если принимаете лекарства, возьмите их список; "
        "при простуде или температуре лучше перенести визит — напишите нам здесь.",
    ),
    (
        "документы",
        "Какие документы взять",
        "{patient_first_name}, возьмите паспорт, полис ДМС (если лечение по нему) и результаты прошлых обследований, "
        "если они есть. Для ребёнка — свидетельство о рождении и документ родителя.",
    ),
]
AFTER_EXTRACTION = (
    "после-удаления",
    "После удаления зуба",
    "{patient_first_name}, после удаления: 2 часа не ешьте, сутки не полощите рот и не грейте щёку, не курите 2 дня. "
    "Холод к щеке по 15 минут в первые часы. Если кровь не останавливается или поднялась температура — позвоните {clinic_phone}.",
)

# Weekly templates (weekday, starts, ends), local time; doctors take them in turn.
WEEKS = [
    [*((d, time(9), time(14)) for d in range(5)), *((d, time(15), time(20)) for d in range(5)), (5, time(10), time(15))],
    [
        *((d, time(9), time(14)) for d in (0, 2, 4)),
        *((d, time(15), time(20)) for d in (0, 2, 4)),
        *((d, time(12), time(20)) for d in (1, 3)),
    ],
    [*((d, time(10), time(14)) for d in range(1, 6)), *((d, time(15), time(19)) for d in range(1, 6))],
]
BOOKING_RULES = {"ulybka": {"late_cancel_hours": 24}, "zdorovie-ekb": {"late_cancel_hours": 12, "min_notice_minutes": 60}}

# Colleagues see each other by name in conversations and lists; the doctor logins are the clinics' first doctors.
STAFF_NAMES = {
    "moscow.owner": ("Виктор", "Белов"),
    "moscow.manager": ("Ирина", "Комарова"),
    "moscow.operator": ("Дарья", "Никитина"),
    "moscow.doctor": ("Мария", "Иванова"),
    "ekb.owner": ("Андрей", "Гусев"),
    "ekb.manager": ("Татьяна", "Киселёва"),
    "ekb.operator": ("Юлия", "Макарова"),
    "ekb.doctor": ("Дмитрий", "Кузнецов"),
}

FIRST_NAMES = ["Анна", "Иван", "Мария", "Сергей", "Елена", "Дмитрий", "Ольга", "Андрей", "Наталья", "Павел"]
LAST_NAMES = ["Волков", "Зайцев", "Лебедев", "Новиков", "Фёдоров", "Козлов", "Орлов", "Егоров", "Павлов", "Семёнов"]
UTM_SOURCES = [("yandex", "cpc"), ("google", "cpc"), ("vk", "social"), ("2gis", "referral"), ("", "")]


class Command(BaseCommand):
    help = "Load demo clinics, staff and patients (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--if-empty", action="store_true", help="Do nothing when any clinic exists already.")

    def handle(self, *args, if_empty: bool = False, **options):
        if if_empty and Clinic.objects.exists():
            self.stdout.write("Database already has clinics: demo data not loaded.")
        else:
            with transaction.atomic():
                self._seed()
        self._print_logins()

    def _seed(self) -> None:
        User = get_user_model()
        admin = User.objects.filter(username="admin").first()
        if admin is None:
            admin = User.objects.create_superuser("admin", "admin@clinic-crm.local", DEMO_PASSWORD)
        rng = random.Random(2026)
        clinics = [self._seed_clinic(admin, spec) for spec in CLINICS]
        self._seed_patients(admin, clinics, rng)
        self._seed_threads(clinics)
        for clinic in clinics:
            self._seed_booking(clinic, rng)
        self._seed_promotion(admin, clinics[0])

    def _seed_clinic(self, admin, spec: dict) -> Clinic:
        clinic, _ = Clinic.objects.get_or_create(
            slug=spec["slug"],
            defaults={"name": spec["name"], "time_zone": spec["time_zone"], "phone": spec["phone"], "address": spec["address"]},
        )
        if not clinic.working_hours.exists():
            for weekday in range(5):
                WorkingHours.objects.create(clinic=clinic, weekday=weekday, opens=time(9), closes=time(20))
            WorkingHours.objects.create(clinic=clinic, weekday=5, opens=time(10), closes=time(16))
        specialties = {name: Specialty.objects.get_or_create(clinic=clinic, name=name)[0] for name in spec["specialties"]}
        services = {}
        for name, minutes, price, specialty in spec["services"]:
            services[name], _ = Service.objects.get_or_create(
                clinic=clinic,
                name=name,
                defaults={"duration_minutes": minutes, "price_rub": price, "specialty": specialties.get(specialty)},
            )
        for tag in spec["tags"]:
            Tag.objects.get_or_create(clinic=clinic, name=tag)
        prefix = spec["staff_prefix"]
        for role in (Role.OWNER, Role.MANAGER, Role.OPERATOR):
            self._grant(admin, clinic, role, f"{prefix}.{role.value}")
        for index, (full_name, doctor_specialties, bio) in enumerate(spec["doctors"], start=1):
            doctor, created = Doctor.objects.get_or_create(clinic=clinic, full_name=full_name, defaults={"bio": bio})
            if created:
                doctor.specialties.set([specialties[s] for s in doctor_specialties])
                doctor.services.set(
                    [
                        s
                        for s in services.values()
                        if s.specialty_id in {specialties[n].pk for n in doctor_specialties} or s.specialty_id is None
                    ]
                )
            if index == 1:  # the first doctor of each clinic answers in the CRM
                membership = self._grant(admin, clinic, Role.DOCTOR, f"{prefix}.doctor")
                if doctor.user_id != membership.user_id:
                    doctor.user = membership.user
                    doctor.save(update_fields=["user"])
        self._seed_canned(admin, clinic, spec, services)
        if not ConsentDocument.objects.filter(clinic=clinic).exists():
            consent_document_publish(
                actor=admin,
                clinic=clinic,
                title="Согласие на обработку персональных данных",
                text=CONSENT_TEXT.format(clinic=clinic.name),
            )
        return clinic

    def _seed_canned(self, admin, clinic: Clinic, spec: dict, services: dict) -> None:
        """The clinic's canned answers, in Russian, with its own directions and prices; a shortcode present is kept."""
        from clinics.services import catalogue_save
        from messaging.models import CannedAnswer

        prices = "; ".join(f"{name} — {service.price_rub:.0f} ₽" for name, service in services.items())
        answers = CANNED_ANSWERS + ([AFTER_EXTRACTION] if spec["extraction"] else [])
        for shortcode, title, text in answers:
            if CannedAnswer.objects.filter(clinic=clinic, owner__isnull=True, shortcode=shortcode).exists():
                continue
            # Clinic-specific parts are written in now; {patient_first_name} and the like stay variables.
            text = text.replace("{directions}", spec["directions"]).replace("{prices}", prices)
            catalogue_save(actor=admin, instance=CannedAnswer(clinic=clinic, shortcode=shortcode, title=title, text=text), created=True)

    def _grant(self, admin, clinic: Clinic, role: Role, username: str) -> Membership:
        """The demo login's membership; granted (and audited) only when it is not there yet."""
        existing = Membership.objects.filter(clinic=clinic, user__username=username, role=role, is_active=True).first()
        first_name, last_name = STAFF_NAMES.get(username, ("", ""))
        membership = existing or membership_grant(
            actor=admin, clinic=clinic, role=role, username=username, password=DEMO_PASSWORD, first_name=first_name, last_name=last_name
        )
        user = membership.user
        if not (user.first_name or user.last_name):  # a demo seeded before its staff had names
            user.first_name, user.last_name = first_name, last_name
            user.save(update_fields=["first_name", "last_name"])
        return membership

    def _seed_patients(self, admin, clinics: list[Clinic], rng: random.Random) -> None:
        for number in range(1, 31):
            phone = f"+7916000{number:04d}"
            patient = Patient.objects.filter(phone=phone, guardian__isnull=True).first()
            if patient is None:
                User = get_user_model()
                user = User(username=f"patient-demo-{number:02d}")
                user.set_unusable_password()
                user.save()
                # Each of the 30 gets a pair of its own: the first name shifts by one every ten patients.
                index = number - 1
                last = LAST_NAMES[index % len(LAST_NAMES)]
                first = FIRST_NAMES[(index + index // len(LAST_NAMES)) % len(FIRST_NAMES)]
                if first in {"Анна", "Мария", "Елена", "Ольга", "Наталья"}:
                    last += "а"
                patient = Patient.objects.create(
                    user=user,
                    phone=phone,
                    email=f"patient{number:02d}@example.ru" if number % 3 == 0 else None,
                    full_name=f"{last} {first}",
                    birth_date=date(1960, 1, 1) + timedelta(days=rng.randrange(0, 365 * 45)),
                )
            # Most patients know one clinic (odd numbers «Улыбка», so the README's +7 916 000-00-01 writes to
            # Moscow); every fifth knows both (the platform case).
            targets = clinics if number % 5 == 0 else [clinics[(number + 1) % 2]]
            for clinic in targets:
                if consent_is_given(patient=patient, clinic=clinic):
                    continue
                source, medium = UTM_SOURCES[number % len(UTM_SOURCES)]
                utm = {"utm_source": source, "utm_medium": medium, "utm_campaign": "demo"} if source else {}
                document = consent_current_document(clinic=clinic)
                assert document is not None, "every demo clinic publishes its consent text first"
                clinic_join(
                    patient=patient,
                    clinic=clinic,
                    document_version=document.version,
                    attribution=Attribution(utm=utm),
                    ip="127.0.0.1",
                    user_agent="seed_demo",
                )

    def _seed_threads(self, clinics: list[Clinic]) -> None:
        """Conversations as an inbox has them: answered, waiting, with a note, with a doctor.

        Created through messaging.services like real ones (numbering, counters, events);
        a patient who has any thread already is left alone, so a second run adds nothing.
        """
        from django.core.cache import cache

        from messaging.models import Thread
        from messaging.services import send_message, thread_assign, thread_open, thread_set_status

        for number in range(1, 31):
            patient = Patient.objects.get(phone=f"+7916000{number:04d}", guardian__isnull=True)
            if Thread.objects.filter(patient=patient).exists():
                continue
            for clinic in [c for c in clinics if consent_is_given(patient=patient, clinic=c)]:
                staff = {m.role: m.user for m in Membership.objects.filter(clinic=clinic, is_active=True).select_related("user")}
                question, answer, follow_up = DEMO_DIALOGUES[number % len(DEMO_DIALOGUES)]
                thread, _ = thread_open(patient=patient, clinic=clinic, actor=patient.user)
                send_message(thread=thread, actor=patient.user, text=question, client_msg_id=f"demo-{number}-1")
                if number % 3:  # two in three were answered; the rest are waiting in the inbox
                    if number % 4 == 0:
                        thread_assign(actor=staff[Role.OPERATOR], thread=thread, assignee=staff[Role.OPERATOR])
                    send_message(thread=thread, actor=staff[Role.OPERATOR], text=answer)
                    if number % 2:
                        send_message(thread=thread, actor=patient.user, text=follow_up, client_msg_id=f"demo-{number}-2")
                    if number % 6 == 1:
                        send_message(
                            thread=thread,
                            actor=staff[Role.OPERATOR],
                            text=f"@{staff[Role.MANAGER].username} пациент просит перезвонить после 18:00",
                            kind="note",
                        )
                    if number % 7 == 0:
                        thread_set_status(actor=staff[Role.OPERATOR], thread=thread, status=Thread.Status.RESOLVED)
                if number % 4 == 1:  # a post-visit question to the doctor who answers in the CRM
                    doctor = clinic.doctors.filter(user__isnull=False).first()
                    assert doctor is not None, "every demo clinic has doctors who sign in"
                    doctor_thread, _ = thread_open(patient=patient, clinic=clinic, actor=patient.user, doctor=doctor)
                    send_message(
                        thread=doctor_thread,
                        actor=patient.user,
                        text="Доктор, после приёма немного ноет — это нормально?",
                        client_msg_id=f"demo-{number}-doctor",
                    )
                    if number % 8 == 1:
                        send_message(
                            thread=doctor_thread,
                            actor=doctor.user,
                            text="Да, 2–3 дня это нормально. Если боль усилится — напишите, посмотрю вас вне очереди.",
                        )
                cache.clear()  # demo bursts are not a person typing fast: reset the send throttle

    def _seed_booking(self, clinic: Clinic, rng: random.Random) -> None:
        """Schedules, rules, a vacation, a month of past visits, two weeks of bookings and a waiting patient.

        Each part is made only when it is missing (a doctor without a schedule, a clinic
        without visits), so a second run adds nothing.
        """
        from appointments.models import BookingRules, ScheduleException, ScheduleRule

        BookingRules.objects.get_or_create(clinic=clinic, defaults=BOOKING_RULES.get(clinic.slug, {}))
        doctors = list(clinic.doctors.order_by("pk"))
        for index, doctor in enumerate(doctors):
            if not ScheduleRule.objects.filter(doctor=doctor).exists():
                ScheduleRule.objects.bulk_create(
                    ScheduleRule(clinic=clinic, doctor=doctor, weekday=weekday, starts=starts, ends=ends, room=f"{101 + index}")
                    for weekday, starts, ends in WEEKS[index % len(WEEKS)]
                )
        today = timezone.localtime(timezone.now(), clinic.tz).date()
        on_leave = doctors[-1]
        if not ScheduleException.objects.filter(doctor=on_leave).exists():
            ScheduleException.objects.create(
                clinic=clinic, doctor=on_leave, kind=ScheduleException.Kind.VACATION,
                date_from=today + timedelta(days=8), date_to=today + timedelta(days=10), note="Отпуск",
            )  # fmt: skip
        if not clinic.visits.exists():
            self._seed_past_visits(clinic, doctors, today, rng)
            self._seed_upcoming_visits(clinic, doctors, today, rng)

    def _seed_past_visits(self, clinic: Clinic, doctors: list, today: date, rng: random.Random) -> None:
        """The last 30 days, written directly: the booking service refuses past times by design."""
        from appointments.models import Visit
        from appointments.selectors import working_hours

        patients = list(Patient.objects.filter(contacts__clinic=clinic).order_by("pk"))
        first = today - timedelta(days=30)
        hours = working_hours(clinic=clinic, doctor_ids=[d.pk for d in doctors], first=first, days=30)
        now = timezone.now()
        busy: dict[int, list[tuple]] = {}  # a patient of both clinics is never in two places at once
        for patient_id, starts, ends in Visit.objects.filter(patient__in=patients, ends_at__gt=now - timedelta(days=31)).values_list(
            "patient_id", "starts_at", "ends_at"
        ):
            busy.setdefault(patient_id, []).append((starts, ends))
        visits = []
        for doctor in doctors:
            services = list(doctor.services.order_by("pk"))
            for offset in range(30):
                for start, end in hours[(doctor.pk, first + timedelta(days=offset))]:
                    moment = start
                    while True:
                        service = rng.choice(services)
                        finish = moment + timedelta(minutes=service.duration_minutes)
                        if finish > end or finish > now:
                            break
                        patient = rng.choice(patients)
                        free = all(finish <= s or moment >= e for s, e in busy.get(patient.pk, ()))
                        if rng.random() < 0.3 and free:
                            busy.setdefault(patient.pk, []).append((moment, finish))
                            visits.append(self._past_visit(clinic, doctor, service, patient, moment, finish, rng))
                        moment = finish
        Visit.objects.bulk_create(visits)

    @staticmethod
    def _past_visit(clinic, doctor, service, patient, starts, ends, rng: random.Random):
        from appointments.models import Visit

        outcome = rng.choices(["completed", "no_show", "late", "in_time"], weights=[72, 10, 7, 11])[0]
        visit = Visit(
            clinic=clinic, doctor=doctor, service=service, patient=patient, starts_at=starts, ends_at=ends,
            source=rng.choice(["portal", "operator", "phone", "thread"]), created_at=starts - timedelta(days=rng.randint(1, 10)),
            status=outcome if outcome in ("completed", "no_show") else Visit.Status.CANCELLED,
        )  # fmt: skip
        if visit.status == Visit.Status.CANCELLED:
            visit.cancelled_late = outcome == "late"
            visit.cancelled_at = starts - (
                timedelta(hours=rng.randint(1, 20)) if visit.cancelled_late else timedelta(days=rng.randint(2, 5))
            )
            visit.cancelled_by = rng.choice(["patient", "clinic"])
            visit.cancel_reason = "Заболел" if visit.cancelled_late else "Планы изменились"
        return visit

    def _seed_upcoming_visits(self, clinic: Clinic, doctors: list, today: date, rng: random.Random) -> None:
        """The next 14 days, booked through the product's service as the front desk would (rules, thread messages)."""
        from django.core.cache import cache
        from django.core.exceptions import ValidationError

        from appointments.selectors import free_slots
        from appointments.services import SlotTaken, visit_book, visit_confirm, waitlist_join

        operator = Membership.objects.get(clinic=clinic, role=Role.OPERATOR, is_active=True).user
        patients = list(Patient.objects.filter(contacts__clinic=clinic).order_by("pk"))
        booked = []
        for doctor in doctors:
            for service in doctor.services.order_by("pk")[:2]:
                slots = free_slots(clinic=clinic, date_from=today, days=14, service=service, doctor_ids=[doctor.pk], for_patient=False)
                for slot in rng.sample(slots, min(len(slots), 8)):
                    try:
                        booked.append(
                            visit_book(
                                actor=operator,
                                clinic=clinic,
                                doctor=doctor,
                                service=service,
                                patient=rng.choice(patients),
                                starts_at=slot.starts_at,
                                source=rng.choice(["operator", "phone"]),
                            )  # fmt: skip
                        )
                    except (SlotTaken, ValidationError):
                        continue  # two picks overlapped, or the person is busy then: a demo needs no retry
        for visit in booked[::4]:
            visit_confirm(actor=operator, visit=visit)
        waitlist_join(actor=operator, patient=patients[0], doctor=doctors[0], service=doctors[0].services.order_by("pk").first())
        cache.clear()  # demo bursts are not a person typing fast: reset the send throttle

    def _seed_promotion(self, admin, clinic: Clinic) -> None:
        """A running promotion reached through the product's launch: the portal highlights the clinic until it is opened."""
        from promotions.models import Promotion
        from promotions.services import promotion_launch

        title = "Профессиональная гигиена −20 %"
        if Promotion.objects.filter(clinic=clinic, title=title).exists():
            return
        today = timezone.localdate()
        promotion = Promotion.objects.create(
            clinic=clinic,
            title=title,
            text="До конца месяца профессиональная чистка зубов со скидкой 20 %. Запишитесь в личном кабинете или напишите нам.",
            valid_from=today,
            valid_until=today + timedelta(days=30),
            created_by=admin,
        )
        promotion_launch(actor=admin, promotion=promotion)

    def _print_logins(self) -> None:
        site = f"http://{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"  # where bin/serve listens
        lines = [
            "",
            f"Demo logins (admin: {site}/admin/), password for all: " + DEMO_PASSWORD,
            "  admin                          platform superuser",
        ]
        for spec in CLINICS:
            for role in Role:
                lines.append(f"  {str(spec['staff_prefix']) + '.' + role.value:<30} {role.label} — {spec['name']}")
        lines += [
            f"Patient portal ({site}/login/): phone +7 916 000-00-01 … +7 916 000-00-30;",
            "  the one-time code is printed in this console (console SMS provider).",
            "",
        ]
        self.stdout.write("\n".join(lines))
