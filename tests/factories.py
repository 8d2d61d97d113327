"""factory-boy factories: every test builds its world from these."""

from datetime import time, timedelta

import factory
from django.contrib.auth import get_user_model
from factory.django import DjangoModelFactory

from appointments.models import ScheduleException, ScheduleRule, Visit, WaitlistEntry
from clinics.models import Branch, Clinic, Doctor, Membership, Service, Specialty, Tag, WorkingHours
from clinics.tenancy import Role
from messaging.models import CannedAnswer, Thread
from patients.models import ConsentDocument, ConsentRecord, Contact, ContactChange, Patient

PASSWORD = "Correct-Horse-42"


class UserFactory(DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.ru")

    @factory.post_generation
    def password(self, create, extracted, **kwargs):
        self.set_password(extracted or PASSWORD)
        if create:
            self.save(update_fields=["password"])


class ClinicFactory(DjangoModelFactory):
    class Meta:
        model = Clinic
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Clinic {n}")
    slug = factory.Sequence(lambda n: f"clinic-{n}")
    time_zone = "Europe/Moscow"
    address = "Москва, ул. Примерная, 1"


class MembershipFactory(DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory, is_staff=True)
    clinic = factory.SubFactory(ClinicFactory)
    role = Role.OPERATOR


class BranchFactory(DjangoModelFactory):
    class Meta:
        model = Branch

    clinic = factory.SubFactory(ClinicFactory)
    name = factory.Sequence(lambda n: f"Branch {n}")


class WorkingHoursFactory(DjangoModelFactory):
    class Meta:
        model = WorkingHours

    clinic = factory.SubFactory(ClinicFactory)
    weekday = 0
    opens = time(9)
    closes = time(18)


class SpecialtyFactory(DjangoModelFactory):
    class Meta:
        model = Specialty

    clinic = factory.SubFactory(ClinicFactory)
    name = factory.Sequence(lambda n: f"Specialty {n}")


class ServiceFactory(DjangoModelFactory):
    class Meta:
        model = Service

    clinic = factory.SubFactory(ClinicFactory)
    name = factory.Sequence(lambda n: f"Service {n}")
    duration_minutes = 30
    price_rub = 1500


class DoctorFactory(DjangoModelFactory):
    class Meta:
        model = Doctor

    clinic = factory.SubFactory(ClinicFactory)
    full_name = factory.Sequence(lambda n: f"Doctor {n}")


class TagFactory(DjangoModelFactory):
    class Meta:
        model = Tag

    clinic = factory.SubFactory(ClinicFactory)
    name = factory.Sequence(lambda n: f"tag{n}")


class PatientFactory(DjangoModelFactory):
    class Meta:
        model = Patient

    user = factory.SubFactory(UserFactory, username=factory.Sequence(lambda n: f"patient-{n}"))
    full_name = factory.Sequence(lambda n: f"Patient {n}")
    phone = factory.Sequence(lambda n: f"+7916555{n:04d}")


class DependantFactory(DjangoModelFactory):
    class Meta:
        model = Patient

    guardian = factory.SubFactory(PatientFactory)
    user = None
    phone = None
    relation = Patient.Relation.CHILD
    full_name = factory.Sequence(lambda n: f"Child {n}")


class ContactFactory(DjangoModelFactory):
    class Meta:
        model = Contact

    clinic = factory.SubFactory(ClinicFactory)
    patient = factory.SubFactory(PatientFactory)


class ConsentDocumentFactory(DjangoModelFactory):
    class Meta:
        model = ConsentDocument

    clinic = factory.SubFactory(ClinicFactory)
    version = factory.Sequence(lambda n: n + 1)
    title = "Согласие на обработку персональных данных"
    text = factory.LazyAttribute(
        lambda o: f"Я даю согласие {o.clinic.name} на обработку моих персональных данных, включая данные о здоровье."
    )


class ConsentRecordFactory(DjangoModelFactory):
    class Meta:
        model = ConsentRecord

    patient = factory.SubFactory(PatientFactory)
    clinic = factory.SubFactory(ClinicFactory)
    document = factory.SubFactory(ConsentDocumentFactory, clinic=factory.SelfAttribute("..clinic"))
    document_version = factory.SelfAttribute("document.version")
    text_sha256 = factory.SelfAttribute("document.text_sha256")
    action = ConsentRecord.Action.GRANTED


class ContactChangeFactory(DjangoModelFactory):
    class Meta:
        model = ContactChange

    patient = factory.SubFactory(PatientFactory)
    field = ContactChange.Field.PHONE
    old_value = "+79160000000"
    new_value = "+79161111111"


class ThreadFactory(DjangoModelFactory):
    """A clinic thread of a consented patient (pass doctor=… and kind="doctor" for a doctor thread)."""

    class Meta:
        model = Thread
        skip_postgeneration_save = True

    clinic = factory.SubFactory(ClinicFactory)
    patient = factory.SubFactory(PatientFactory)
    contact = factory.LazyAttribute(lambda o: Contact.objects.get_or_create(clinic=o.clinic, patient=o.patient)[0])
    kind = Thread.Kind.CLINIC

    @factory.post_generation
    def consent(self, create, extracted, **kwargs):
        """Consent of the account holder to the clinic's current text (consent=False to skip)."""
        if extracted is False or not create:
            return
        holder = self.patient.account_holder
        document = ConsentDocument.objects.filter(clinic=self.clinic).order_by("-version").first() or ConsentDocumentFactory(
            clinic=self.clinic
        )
        if not ConsentRecord.objects.filter(patient=holder, clinic=self.clinic, document=document).exists():
            ConsentRecordFactory(patient=holder, clinic=self.clinic, document=document)


class CannedAnswerFactory(DjangoModelFactory):
    class Meta:
        model = CannedAnswer

    clinic = factory.SubFactory(ClinicFactory)
    owner = None  # the clinic's answer; a user makes it personal
    shortcode = factory.Sequence(lambda n: f"answer{n}")
    title = "Address"
    text = "{patient_first_name}, we are at {clinic_address}."


class ScheduleRuleFactory(DjangoModelFactory):
    """One weekly working interval of a doctor (default: Monday 09:00–18:00 local)."""

    class Meta:
        model = ScheduleRule

    doctor = factory.SubFactory(DoctorFactory)
    clinic = factory.SelfAttribute("doctor.clinic")
    weekday = 0
    starts = time(9)
    ends = time(18)


class ScheduleExceptionFactory(DjangoModelFactory):
    class Meta:
        model = ScheduleException

    doctor = factory.SubFactory(DoctorFactory)
    clinic = factory.SelfAttribute("doctor.clinic")
    kind = ScheduleException.Kind.VACATION


class VisitFactory(DjangoModelFactory):
    """A visit written straight to the table (tests of reads); bookings under test go through services."""

    class Meta:
        model = Visit

    doctor = factory.SubFactory(DoctorFactory)
    clinic = factory.SelfAttribute("doctor.clinic")
    service = factory.SubFactory(ServiceFactory, clinic=factory.SelfAttribute("..clinic"))
    patient = factory.SubFactory(PatientFactory)
    ends_at = factory.LazyAttribute(lambda o: o.starts_at + timedelta(minutes=o.service.duration_minutes))


class WaitlistEntryFactory(DjangoModelFactory):
    class Meta:
        model = WaitlistEntry

    doctor = factory.SubFactory(DoctorFactory)
    clinic = factory.SelfAttribute("doctor.clinic")
    service = factory.SubFactory(ServiceFactory, clinic=factory.SelfAttribute("..clinic"))
    patient = factory.SubFactory(PatientFactory)


def bookable_service(doctor: Doctor, *, name: str, ends: time = time(18), duration_minutes: int = 30) -> Service:
    """A service the doctor does, and a doctor who works it every day from 09:00 to `ends` (clinic's time)."""
    service = ServiceFactory(clinic=doctor.clinic, name=name, duration_minutes=duration_minutes)
    doctor.services.add(service)
    for weekday in range(7):
        ScheduleRuleFactory(doctor=doctor, weekday=weekday, starts=time(9), ends=ends)
    return service
